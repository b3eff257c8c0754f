"""Switchboard core: taxonomy, schemas, settings, text preprocessing, tokenization and the CLI.

Everything here is torch-free so that serving can import it.
"""

__version__ = "0.1.0"
