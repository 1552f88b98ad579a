"""Command line: one module per command, each a thin skin that parses flags, calls the
library and prints. `app` and `main` are the entry points."""

import os

# batch-share does no linear algebra, yet numpy's OpenBLAS starts a thread per core on
# import and lets them spin: on two cores that doubled the CPU time of `import numpy`
# (0.12 s to 0.22 s) for nothing. Set before anything imports numpy; a value the user
# exported still wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from batch_share.cli.app import app, main

__all__ = ["app", "main"]
