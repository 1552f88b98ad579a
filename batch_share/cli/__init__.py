"""Command line: one module per command, each a thin skin that parses flags, calls the
library and prints. `app` and `main` are the entry points."""

from batch_share.cli.app import app, main

__all__ = ["app", "main"]
