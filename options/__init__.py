"""Command-line options, one module per command, shared groups in ``common``."""
