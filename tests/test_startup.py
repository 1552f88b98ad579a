"""A hand run on a small sheet pays only for what it uses: the csv module instead of
pyarrow, no pandas, no httpx; and the small-input paths give exactly what the big-input
paths give, so a sheet's result never depends on its size."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from helpers import WAIT_LIMIT
from hypothesis import given, settings
from hypothesis import strategies as st

from batch_share.models import distinct
from batch_share.plan.grouping import plan_lines
from batch_share.sheet import arrowtext, loader
from batch_share.sheet.loader import load_sheet
from batch_share.sheet.validate import validate

CELL = st.text(alphabet='ab ,;"\n\r\t\u00e9', max_size=6)
RECORDS = st.lists(st.lists(CELL, min_size=0, max_size=4), max_size=8)
RAW = st.text(alphabet='ab ,"\n\r\u00e9', max_size=40)


def _grid(data: bytes, *, small: bool) -> list[tuple[tuple[str, ...], list[int]]] | str:
    """The encoded columns `_read_text` makes of `data`, by the small path or the others."""
    with tempfile.TemporaryDirectory() as folder, pytest.MonkeyPatch.context() as patch:
        path = Path(folder) / "sheet.csv"
        path.write_bytes(data)
        patch.setattr(loader, "_SMALL_TEXT_BYTES", len(data) if small else -1)
        try:
            grid = loader._read_text(path, default_delimiter=",")
        except Exception as error:  # noqa: BLE001 - the refusal itself is compared
            return f"{type(error).__name__}: {error}"
    return [(column.values, column.codes.tolist()) for column in grid.columns]


@settings(max_examples=200, deadline=None)
@given(RECORDS, st.sampled_from(["\n", "\r\n"]))
def test_small_csv_path_reads_written_records_as_the_arrow_and_ragged_paths(
    records: list[list[str]], newline: str
) -> None:
    out = io.StringIO()
    csv.writer(out, lineterminator=newline).writerows(records)
    data = out.getvalue().encode("utf-8")

    _assert_same(data)


@settings(max_examples=200, deadline=None)
@given(RAW)
def test_small_csv_path_reads_any_text_as_the_other_paths(text: str) -> None:
    _assert_same(text.encode("utf-8"))


def _assert_same(data: bytes) -> None:
    small, other = _grid(data, small=True), _grid(data, small=False)
    if isinstance(other, str) and other.startswith(PANDAS_REFUSAL):
        # The one allowed difference: pandas' C parser refuses some valid files with a
        # quoted carriage return in a ragged file ("EOF inside string"); the csv module
        # reads them as written. The small path never refuses what the others read.
        assert not isinstance(small, str)
        return
    assert small == other


PANDAS_REFUSAL = "SheetError: sheet.csv: cannot be parsed as delimited text (Error tokenizing"


def test_small_columns_validate_and_plan_as_big_ones(tmp_path: Path) -> None:
    rows = [
        ("device_id", "service_id", "email", "action"),
        *(
            (f"80-00-00-00-01-00-00-{i % 9:02X}", "", f"User{i % 13}@Example.com; x{i}@ex.com", "")
            for i in range(40)
        ),
        ("8.00000001E+15", "", "not an address", "add"),
    ]
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    path = tmp_path / "s.csv"
    path.write_text(out.getvalue(), encoding="utf-8")

    def planned() -> tuple[object, ...]:
        sheet = load_sheet(path)
        checked = validate(sheet)
        plan = plan_lines(checked.lines, row_numbers=sheet.row_numbers)
        return (
            [(p.row, p.column, p.code, p.message) for p in checked.problems],
            [(m.device_ids, m.emails, m.variables()) for m in plan.mutations],
        )

    small = planned()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(arrowtext, "ARROW_MIN_TEXTS", 0)
        big = planned()
    assert small == big


def _imported(args: list[str], cwd: Path) -> set[str]:
    """Top-level packages a real `batch-share` process imported, from `-X importtime`."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "batch_share", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=WAIT_LIMIT,
        check=False,
    )
    assert result.returncode in {0, 1}, result.stderr[-2000:]
    names = set()
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


def _sheet(path: Path, rows: int) -> Path:
    lines = ["device_id,service_id,email,action"]
    lines += [
        f"80:00:00:00:01:00:{i // 256 % 256:02x}:{i % 256:02x},,u{i}@example.com,ADD"
        for i in range(rows)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.slow
def test_plan_of_a_small_csv_imports_no_pyarrow_pandas_or_httpx(tmp_path: Path) -> None:
    small = _imported(["plan", str(_sheet(tmp_path / "small.csv", 20))], tmp_path)
    big = _imported(
        ["plan", str(_sheet(tmp_path / "big.csv", 3 * arrowtext.ARROW_MIN_TEXTS))], tmp_path
    )

    assert "numpy" in small
    assert not small & {"pyarrow", "pandas", "httpx", "openpyxl", "python_calamine"}
    assert "pyarrow" in big  # the big-sheet fast paths are still taken
    assert not big & {"pandas", "httpx"}


@given(st.lists(st.integers(min_value=-5, max_value=5), max_size=30))
def test_distinct_is_numpy_unique(values: list[int]) -> None:
    array = np.asarray(values, dtype=np.int64)

    assert distinct(array).tolist() == np.unique(array).tolist()


def _threads_after(script: str, environment: dict[str, str]) -> int:
    result = subprocess.run(
        [sys.executable, "-c", f"{script}; print(len(os.listdir('/proc/self/task')))"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=WAIT_LIMIT,
        check=True,
    )
    return int(result.stdout)


@pytest.mark.skipif(
    not Path("/proc/self/task").is_dir(), reason="counts the process's threads in /proc"
)
def test_the_command_starts_no_openblas_threads_unless_told_to() -> None:
    env = {name: value for name, value in os.environ.items() if name != "OPENBLAS_NUM_THREADS"}
    two = {**env, "OPENBLAS_NUM_THREADS": "2"}
    plain_numpy = _threads_after("import os, numpy", two)
    if plain_numpy < 2:
        pytest.skip("this numpy starts no BLAS threads of its own")

    assert _threads_after("import os, batch_share.cli, numpy", env) == 1
    assert _threads_after("import os, batch_share.cli, numpy", two) == plain_numpy
