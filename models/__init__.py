"""Model bundles: the contract between training (writes them) and serving (checks them on load).

``models.bundle`` and ``models.classifier`` are torch-free; ``models.export`` needs the training extra.
"""
