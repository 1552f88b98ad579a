"""The vectorised fast paths give exactly what the Python definitions give.

Validation and planning hand the common case of a big sheet to arrow (RE2 regexes, C++
string sorts) and keep Python for the rest. Each fast path is compared here with the code
that defines its result, on generated inputs that mix the common case with everything else.
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batch_share.models import Column, Sheet
from batch_share.plan.grouping import _string_ranks, _string_ranks_in_numpy, plan_lines
from batch_share.sheet import arrowtext
from batch_share.sheet.arrowtext import fullmatch, to_arrow, to_bools, to_ints
from batch_share.sheet.emails import PLAIN_EMAIL as _PLAIN_EMAIL
from batch_share.sheet.emails import check_emails, check_emails_in_python
from batch_share.sheet.ids import CANONICAL_ID as _CANONICAL_ID
from batch_share.sheet.ids import check_ids, id_verdict
from batch_share.sheet.loader import load_sheet
from batch_share.sheet.validate import validate

examples = settings(max_examples=150, deadline=None)


@pytest.fixture(scope="module", autouse=True)
def arrow_even_for_small_inputs() -> Iterator[None]:
    """The generated inputs here are small, and the product keeps small columns in Python
    (see ARROW_MIN_TEXTS); these tests are about the arrow paths, so they take them."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(arrowtext, "ARROW_MIN_TEXTS", 0)
        yield


# Text that is near the patterns' edges: case, separators, whitespace (a trailing newline
# is where Python's `$` and RE2's differ), non-ASCII letters and digits, zero-width spaces.
EDGE_CHARACTERS = "aAzZ09fF:-.@_+'!~`{|},; \t\n\r\u00a0\u200b\ufeffé٣ß"
EDGE_TEXT = st.text(alphabet=EDGE_CHARACTERS, max_size=30)
ANY_TEXT = st.text(max_size=30)  # hypothesis leaves out lone surrogates by default

PLAIN_ADDRESS = st.from_regex(_PLAIN_EMAIL, fullmatch=True)
CANONICAL_ID = st.from_regex(_CANONICAL_ID, fullmatch=True)


def near(pattern_text: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Matches of a pattern, some of them spoiled at either end."""
    return st.builds(lambda a, text, b: a + text + b, EDGE_TEXT, pattern_text, EDGE_TEXT) | (
        pattern_text
    )


def column_of(texts: Sequence[str], typed: Sequence[bool] | None = None) -> Column:
    """A column whose distinct texts are `texts` (which must be distinct)."""
    return Column(
        "cells",
        np.arange(len(texts), dtype=np.int64),
        tuple(texts),
        None if typed is None else tuple(typed),
    )


# --- RE2 reads the shared patterns as Python does --------------------------------------


@examples
@given(st.lists(near(PLAIN_ADDRESS) | ANY_TEXT | EDGE_TEXT, max_size=20))
def test_plain_email_pattern_means_the_same_to_re2(texts: list[str]) -> None:
    arrow_texts = to_arrow(texts)
    assert arrow_texts is not None
    expected = [_PLAIN_EMAIL.fullmatch(text) is not None for text in texts]
    assert fullmatch(arrow_texts, _PLAIN_EMAIL).tolist() == expected


@examples
@given(st.lists(near(CANONICAL_ID) | ANY_TEXT | EDGE_TEXT, max_size=20))
def test_canonical_id_pattern_means_the_same_to_re2(texts: list[str]) -> None:
    arrow_texts = to_arrow(texts)
    assert arrow_texts is not None
    expected = [_CANONICAL_ID.fullmatch(text) is not None for text in texts]
    assert fullmatch(arrow_texts, _CANONICAL_ID).tolist() == expected


def test_fullmatch_rejects_a_trailing_newline_as_python_does() -> None:
    texts = ["80:00:00:00:00:00:00:01\n", "ann@example.com\n"]
    arrow_texts = to_arrow(texts)
    assert arrow_texts is not None
    assert fullmatch(arrow_texts, _CANONICAL_ID).tolist() == [False, False]
    assert fullmatch(arrow_texts, _PLAIN_EMAIL).tolist() == [False, False]


# --- conversions ---------------------------------------------------------------------------


@examples
@given(st.lists(ANY_TEXT, max_size=20))
def test_to_arrow_keeps_every_text(texts: list[str]) -> None:
    arrow_texts = to_arrow(texts)
    assert arrow_texts is not None
    arrow_texts.validate(full=True)
    assert arrow_texts.to_pylist() == texts


def test_to_arrow_declines_text_that_is_not_unicode() -> None:
    assert to_arrow(["ann@example.com", "\ud800"]) is None


def test_to_ints_and_to_bools_read_sliced_and_chunked_arrays() -> None:
    texts = to_arrow(["b", "a", "c", "a"])
    assert texts is not None
    indices = pc.array_sort_indices(texts)  # uint64
    assert to_ints(indices).tolist() == [1, 3, 0, 2]
    assert to_ints(indices[1:3]).tolist() == [3, 0]
    codes = pc.dictionary_encode(texts).indices  # int32
    assert to_ints(pa.chunked_array([codes[2:], codes[:1]])).tolist() == [2, 1, 0]
    has_a = pc.match_substring_regex(texts, "a")
    assert to_bools(has_a).tolist() == [False, True, False, True]
    assert to_bools(has_a[1:]).tolist() == [True, False, True]


# --- emails --------------------------------------------------------------------------------

EMAIL_CELL = (
    PLAIN_ADDRESS
    | st.sampled_from(["Ann@Example.com", "ann@example.com", "zoë@exämple.de", "", " "])
    | st.lists(PLAIN_ADDRESS | EDGE_TEXT, min_size=1, max_size=3).map(", ".join)
    | st.builds(lambda local: local + "@example.com", st.text(alphabet="ab", min_size=60))
    | st.builds(lambda domain: "ann@" + domain + ".com", st.text(alphabet="ab", min_size=248))
    | near(PLAIN_ADDRESS)
    | ANY_TEXT
)


def assert_same_cells(texts: list[str]) -> None:
    column = column_of(texts)
    fast, slow = check_emails(column), check_emails_in_python(column)
    assert fast.emails == slow.emails
    assert fast.keys == slow.keys
    assert fast.issues == slow.issues
    for name in ("counts", "starts", "addresses", "bad", "cell_bad"):
        assert getattr(fast, name).tolist() == getattr(slow, name).tolist(), name


@examples
@given(st.lists(EMAIL_CELL, unique=True, max_size=25))
def test_email_fast_path_agrees_with_python(texts: list[str]) -> None:
    assert_same_cells(texts)


def test_email_fast_path_with_addresses_repeated_across_cells() -> None:
    # A split cell that names plain cells' addresses before and after they appear alone.
    assert_same_cells(
        [
            "bob@example.com",
            "cat@example.com; bob@example.com, dan@example.com",
            "cat@example.com",
            " dan@example.com",
            "dan@example.com",
            "Eve@Example.com",
            "eve@example.com; not an address",
        ]
    )


def test_email_fast_path_with_every_cell_plain_shares_the_column_text() -> None:
    column = column_of(["ann@example.com", "Bob@Example.com"])
    cells = check_emails(column)
    assert cells.emails is column.values
    assert cells.keys == ("ann@example.com", "bob@example.com")
    assert cells.issues == (None, None)


# --- ids -----------------------------------------------------------------------------------


def ids_in_python(
    column: Column, name: str, *, required: bool
) -> tuple[list[int], list[object], tuple[str, ...]]:
    """The ID check as defined before it had a fast path: the oracle."""
    table: dict[str, int] = {}
    values: list[int] = []
    issues: list[object] = []
    typed = column.typed or (False,) * len(column.values)
    for text, is_typed in zip(column.values, typed, strict=True):
        value: str | None
        if not is_typed and _CANONICAL_ID.fullmatch(text):
            value, issue = text, None
        else:
            value, issue = id_verdict(text.strip(), name, is_typed=is_typed, required=required)
        values.append(-1 if value is None else table.setdefault(value, len(table)))
        issues.append(issue)
    return values, issues, tuple(table)


ID_CELL = (
    CANONICAL_ID
    | CANONICAL_ID.map(str.lower)
    | CANONICAL_ID.map(lambda text: text.replace(":", "-"))
    | CANONICAL_ID.map(lambda text: " " + text.replace(":", ""))
    | near(CANONICAL_ID)
    | st.sampled_from(["", "8.00000001234568e+15", "12:30", "2024-01-02"])
    | EDGE_TEXT
)


@examples
@given(
    st.lists(st.tuples(ID_CELL, st.booleans()), unique_by=lambda cell: cell[0], max_size=20),
    st.booleans(),
    st.booleans(),
)
def test_id_fast_path_agrees_with_python(
    cells: list[tuple[str, bool]], with_types: bool, required: bool
) -> None:
    texts = [text for text, _ in cells]
    column = column_of(texts, [is_typed for _, is_typed in cells] if with_types else None)
    verdicts, table = check_ids(column, "device_id", required=required)
    values, issues, expected_table = ids_in_python(column, "device_id", required=required)
    assert verdicts.value.tolist() == values
    assert list(verdicts.issues) == issues
    assert verdicts.bad.tolist() == [issue is not None for issue in issues]
    assert table == expected_table


# --- sorting strings ----------------------------------------------------------------------


def dense_ranks(table: Sequence[str]) -> list[int]:
    """Python's own order: the definition both sorts must follow."""
    rank = {text: index for index, text in enumerate(sorted(set(table)))}
    return [rank[text] for text in table]


@examples
@given(st.lists(ANY_TEXT | EDGE_TEXT | PLAIN_ADDRESS, max_size=30))
def test_arrow_string_ranks_follow_python_order(table: list[str]) -> None:
    ranks, distinct = _string_ranks(table)
    assert ranks.tolist() == dense_ranks(table)
    assert distinct.tolist() == sorted(set(table))


@examples
@given(
    st.lists(st.text(alphabet=st.characters(exclude_characters="\x00")), min_size=1, max_size=30)
)
def test_numpy_string_ranks_agree_with_arrow(table: list[str]) -> None:
    # NUL is left out: numpy's fixed-width strings drop trailing NULs, so "a\0" == "a"
    # there. The numpy path only serves text arrow cannot take (lone surrogates).
    arrow_ranks, arrow_distinct = _string_ranks(table)
    numpy_ranks, numpy_distinct = _string_ranks_in_numpy(table)
    assert arrow_ranks.tolist() == numpy_ranks.tolist()
    assert arrow_distinct.tolist() == numpy_distinct.tolist()


def test_string_ranks_fall_back_for_lone_surrogates() -> None:
    ranks, distinct = _string_ranks(["b", "\ud800", "a", "b"])
    assert ranks.tolist() == [1, 2, 0, 1]
    assert distinct.tolist() == ["a", "b", "\ud800"]


# --- loading ------------------------------------------------------------------------------


def test_csv_bigger_than_a_parse_block_encodes_each_column_once(tmp_path: Path) -> None:
    # pyarrow parses in blocks of about a megabyte; every block must index one dictionary.
    rows = [
        (f"80:00:00:00:00:00:{i // 256 % 256:02X}:{i % 256:02X}", f"user{i % 7001}@example.com")
        for i in range(60_000)
    ]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([("device_id", "email"), *rows])
    path = tmp_path / "big.csv"
    path.write_text(out.getvalue(), encoding="utf-8")
    assert path.stat().st_size > 2_000_000

    sheet = load_sheet(path)

    assert [sheet.cell(1, r) for r in range(len(rows))] == [email for _, email in rows]
    email = sheet.columns[1]
    assert len(email.values) == 7001
    assert email.values[:3] == ("user0@example.com", "user1@example.com", "user2@example.com")
    assert email.codes.tolist() == [i % 7001 for i in range(len(rows))]


def test_planning_a_csv_never_imports_pandas(tmp_path: Path) -> None:
    path = tmp_path / "shares.csv"
    path.write_text("device_id,email\n80:00:00:00:00:00:00:01,ann@example.com\n", encoding="utf-8")
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from batch_share.sheet.loader import load_sheet\n"
        "from batch_share.plan.grouping import plan_lines\n"
        "from batch_share.sheet.validate import validate\n"
        f"sheet = load_sheet(Path({str(path)!r}))\n"
        "plan = plan_lines(validate(sheet).lines, row_numbers=sheet.row_numbers)\n"
        "assert len(plan.mutations) == 1\n"
        "print('pandas' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_text_arrow_cannot_take_goes_the_python_way() -> None:
    # Only a sheet built in Python can hold a lone surrogate; it must still validate and plan.
    sheet = Sheet.from_rows(
        ("device_id", "email"),
        [
            ("80:00:00:00:00:00:00:01", "\ud800@example.com"),
            ("80:00:00:00:00:00:00:01\ud800", "ann@example.com"),
            ("80:00:00:00:00:00:00:02", "Ann@Example.com"),
        ],
    )
    result = validate(sheet)
    assert [(p.row, p.code) for p in result.problems] == [
        (2, "invalid-email"),
        (3, "invalid-device-id"),
    ]
    plan = plan_lines(result.lines, row_numbers=sheet.row_numbers)
    assert [(m.device_ids, m.emails) for m in plan.mutations] == [
        (("80:00:00:00:00:00:00:02",), ("Ann@Example.com",))
    ]
