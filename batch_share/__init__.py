"""batch-share: apply a spreadsheet of remote.it share grants and revocations, row by row."""

__version__ = "0.1.0"
