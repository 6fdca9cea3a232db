"""What the non-training subcommands do (``prune``, ``export``, ``profile``), as plain functions on
top of the torch-only packages; ``cli.py`` only forwards arguments."""
