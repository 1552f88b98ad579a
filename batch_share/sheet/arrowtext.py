"""Move text columns between Python and pyarrow, for the vectorised checks and sorts.

Validation and planning do most of their per-value work in arrow's C++ kernels (RE2 regexes,
string sorts) and fall back to Python only for the values those kernels cannot vouch for.

The conversions here avoid `pa.array()` and `Array.to_numpy()` on purpose: both import
pandas on first use, as does passing a Python scalar to a compute function, which would cost
`batch-share plan` a fifth of a second of start-up for nothing. Building arrays from their
buffers and viewing buffers with numpy does the same job for the few shapes needed (text in,
booleans and integers out); comparisons with constants are done in numpy.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from batch_share.models import BoolArray, IntArray

if TYPE_CHECKING:
    import pyarrow as pa

# Below this many texts the Python paths are faster than importing pyarrow (a few hundred
# milliseconds of a hand run's start-up); above it arrow's kernels win. Tests that compare
# the two paths on small inputs set it to 0.
ARROW_MIN_TEXTS = 2000


def arrow_if_worth_it(texts: Sequence[str]) -> pa.LargeStringArray | None:
    """`to_arrow(texts)` for a column big enough to repay importing pyarrow; else None, and
    callers take the pure-Python path they already have for text arrow cannot take."""
    if len(texts) < ARROW_MIN_TEXTS:
        return None
    return to_arrow(texts)


def to_arrow(texts: Sequence[str]) -> pa.LargeStringArray | None:
    """`texts` as one arrow string array, or None when a text cannot be UTF-8 (a lone
    surrogate, which only a `Sheet` built by hand can hold): callers then take their
    pure-Python path."""
    try:
        data = "".join(texts).encode("utf-8")
        lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
        if len(data) != lengths.sum():  # not ASCII, so characters and bytes differ
            encoded = [text.encode("utf-8") for text in texts]
            lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(texts))
    except UnicodeEncodeError:
        return None
    import pyarrow as pa  # noqa: PLC0415 - small sheets never load arrow (see ARROW_MIN_TEXTS)

    offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return pa.LargeStringArray.from_buffers(len(texts), pa.py_buffer(offsets), pa.py_buffer(data))


def to_bools(mask: pa.BooleanArray | pa.ChunkedArray) -> BoolArray:
    """A null-free arrow boolean array as numpy booleans."""
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.compute as pc  # noqa: PLC0415

    return to_ints(pc.cast(mask, pa.uint8())).astype(np.bool_)


def to_ints(values: pa.Array | pa.ChunkedArray) -> IntArray:
    """A null-free arrow integer array, chunked or not, as numpy int64."""
    import pyarrow as pa  # noqa: PLC0415

    if values.null_count:
        raise ValueError("to_ints() needs an array without nulls")
    chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
    result = np.empty(len(values), dtype=np.int64)
    start = 0
    for chunk in chunks:
        kind = "u" if pa.types.is_unsigned_integer(chunk.type) else "i"
        dtype = np.dtype(f"{kind}{chunk.type.bit_width // 8}")
        view = np.frombuffer(
            chunk.buffers()[1], dtype=dtype, count=len(chunk), offset=chunk.offset * dtype.itemsize
        )
        result[start : start + len(chunk)] = view
        start += len(chunk)
    return result


def fullmatch(texts: pa.LargeStringArray, pattern: re.Pattern[str]) -> BoolArray:
    """Per text, whether `pattern` matches all of it: RE2's answer to `pattern.fullmatch`.

    Only for patterns written in the syntax both engines read alike: ASCII character
    classes and literals, groups, alternation and counted repeats, with no `\\s` `\\d` `\\w`
    (Unicode-aware in Python, ASCII in RE2), lookarounds or back-references.
    """
    import pyarrow.compute as pc  # noqa: PLC0415

    anchored = rf"\A(?:{pattern.pattern})\z"  # the ends of the text, as fullmatch means
    return to_bools(pc.match_substring_regex(texts, anchored))
