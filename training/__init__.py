"""Training: fine-tune a pretrained encoder on labelled feedback (torch + transformers, CPU)."""
