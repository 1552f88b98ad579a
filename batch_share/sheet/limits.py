"""Every bound the loader enforces, in one place. Each refusal names its limit, so a user who
hits one can tell which it was; the message says how to get past it where that is safe.

Sizes are in bytes unless the name says otherwise.
"""

from __future__ import annotations

# Excel's own grid: no spreadsheet program can save a cell outside it, so a reference past
# it is a damaged or crafted file, never a user's sheet.
MAX_ROWS = 1_048_576
MAX_COLUMNS = 16_384

# Excel's limit on the text of one cell; no share sheet comes near it, and a longer cell in
# a text file is a runaway quote or not a sheet at all.
MAX_CELL_CHARS = 32_767

# A sheet file is read whole (pyarrow parses a buffer), costing a few times its size at
# peak: 2 GiB of CSV is some 25 million rows, far beyond any batch of shares.
MAX_FILE_BYTES = 2 * 2**30

# One JSON Lines record is one report line or one share: a few hundred bytes. A megabyte
# leaves room for long notes while keeping a garbage line from costing much to parse.
MAX_JSON_LINE_CHARS = 2**20

# Report lines are flat objects; nested values are only carried through as text. 64 levels
# is far past any real record and far below Python's recursion limit.
MAX_JSON_DEPTH = 64

# A workbook's parts, decompressed. A 100,000-row share sheet is about 40 MB of XML, so a
# full 1,048,576-row one stays under 1 GiB; anything bigger cannot be a share sheet and
# would cost several GiB of memory to read.
MAX_WORKBOOK_XML_BYTES = 2**30

# Real spreadsheet XML deflates about 14:1 (the 100,000-row bench workbook); even very
# repetitive XML stays well under 200:1, while a bomb's parts reach 1000:1. Parts smaller
# than the floor are let through whatever their ratio: they are too small to hurt.
MAX_COMPRESSION_RATIO = 200
COMPRESSION_RATIO_FLOOR = 16 * 2**20

# A workbook holds a few dozen parts (sheets, styles, images); tens of thousands of entries
# only make the zip directory itself expensive.
MAX_ZIP_MEMBERS = 10_000

# The workbook reader builds one dense grid over the sheet's used range. A range this many
# cells big is cheap (about 40 MB) whatever holds it; past it, the range must also be filled
# at least this fraction to be read densely, otherwise only the real cells are kept.
DENSE_RANGE_FLOOR = 2**20
DENSE_RANGE_MIN_FILL = 8
