"""The operator's command line (``ai-admin``)."""
