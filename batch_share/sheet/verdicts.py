"""What a check says about one distinct cell text, before it is tied to rows: shared by the
ID, email and option checks, so every problem reads the same way."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from batch_share.models import (
    BoolArray,
    IntArray,
)

# (code, message) of one problem, before it is tied to a row.
Issue = tuple[str, str]


def quote(text: str) -> str:
    shown = text if len(text) <= 60 else text[:57] + "..."
    return "'" + shown.replace("\r", "\\r").replace("\n", "\\n") + "'"


@dataclass(frozen=True, slots=True)
class Verdicts:
    """One column's verdict per distinct cell text: the parsed value and the problem."""

    value: IntArray  # table index, action index or 0/1, per distinct text; -1 if unusable
    issues: tuple[Issue | None, ...]
    bad: BoolArray

    @classmethod
    def build(cls, values: Sequence[int], issues: Sequence[Issue | None]) -> Verdicts:
        return cls(
            value=np.asarray(values, dtype=np.int64),
            issues=tuple(issues),
            bad=np.fromiter((i is not None for i in issues), dtype=np.bool_, count=len(issues)),
        )
