"""Random and mutated sheet files: whatever the bytes, the loader returns a `Sheet` or raises
a `SheetError` with a message, and the CLI exits with one of its codes and no traceback.

Examples are few by default so CI stays quick; `make fuzz` sets BATCH_SHARE_FUZZ_EXAMPLES
to run many more.
"""

from __future__ import annotations

import io
import os
import resource
import subprocess
import sys
import zipfile
from pathlib import Path

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batch_share.errors import SheetError
from batch_share.models import Sheet
from batch_share.sheet.loader import load_sheet

EXAMPLES = int(os.environ.get("BATCH_SHARE_FUZZ_EXAMPLES", "40"))
SAMPLES = Path(__file__).resolve().parent.parent / "sample_sheets"
# Far above what any of these small files may cost, far below what a runaway read would.
PEAK_RSS_CEILING = 2 * 2**30


def small_xlsx() -> bytes:
    workbook = openpyxl.Workbook()
    workbook.active.append(["device_id", "email", "action"])
    workbook.active.append(["80:00:00:00:00:00:00:01", "a@example.com", "ADD"])
    workbook.active["XFD1048576"] = "x"
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


SEEDS: dict[str, list[bytes]] = {
    ".csv": [
        (SAMPLES / "messy.csv").read_bytes(),
        (SAMPLES / "offboarding.csv").read_bytes(),
        b"device_id,email\n80:00:00:00:00:00:00:01,a@example.com\n",
    ],
    ".xlsx": [(SAMPLES / "onboarding.xlsx").read_bytes(), small_xlsx()],
    ".jsonl": [b'{"device_id": "80:00:00:00:00:00:00:01", "email": "a@example.com"}\n'],
}


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    data = bytearray(seed)
    for _ in range(draw(st.integers(0, 8))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        match draw(st.sampled_from(["flip", "cut", "insert", "repeat"])):
            case "flip":
                data[at] = draw(st.integers(0, 255))
            case "cut":
                del data[at : at + draw(st.integers(1, 64))]
            case "insert":
                data[at:at] = draw(st.binary(max_size=32))
            case _:
                data[at:at] = data[at : at + 16] * draw(st.integers(1, 200))
    return bytes(data)


def mutated_xlsx_part(seed: bytes, part_bytes: bytes) -> bytes:
    """Keep the zip valid and break what is inside: damage that reaches the XML readers."""
    with zipfile.ZipFile(io.BytesIO(seed)) as archive:
        parts = {name: archive.read(name) for name in archive.namelist()}
    parts["xl/worksheets/sheet1.xml"] = part_bytes
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    return out.getvalue()


def files() -> st.SearchStrategy[tuple[str, bytes]]:
    choices = [
        st.tuples(st.just(suffix), st.sampled_from(seeds).flatmap(mutated))
        for suffix, seeds in SEEDS.items()
    ]
    sheet_xml = zipfile.ZipFile(io.BytesIO(SEEDS[".xlsx"][1])).read("xl/worksheets/sheet1.xml")
    choices.append(
        st.tuples(
            st.just(".xlsx"),
            mutated(sheet_xml).map(lambda xml: mutated_xlsx_part(SEEDS[".xlsx"][1], xml)),
        )
    )
    choices.append(
        st.tuples(st.sampled_from([".csv", ".jsonl", ".xlsx", ".ods"]), st.binary(max_size=512))
    )
    return st.one_of(choices)


def outcome(path: Path) -> Sheet | SheetError:
    try:
        return load_sheet(path)
    except SheetError as err:
        return err


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(file=files())
def test_any_bytes_give_a_sheet_or_a_sheet_error(
    tmp_path_factory: pytest.TempPathFactory, file: tuple[str, bytes]
) -> None:
    suffix, data = file
    path = tmp_path_factory.mktemp("fuzz") / f"sheet{suffix}"
    path.write_bytes(data)

    result = outcome(path)

    assert isinstance(result, Sheet) or str(result)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    assert peak < PEAK_RSS_CEILING


@settings(max_examples=max(3, EXAMPLES // 10), deadline=None)
@given(file=files())
def test_the_cli_never_shows_a_traceback(
    tmp_path_factory: pytest.TempPathFactory, file: tuple[str, bytes]
) -> None:
    suffix, data = file
    path = tmp_path_factory.mktemp("fuzz-cli") / f"sheet{suffix}"
    path.write_bytes(data)

    result = subprocess.run(
        [sys.executable, "-m", "batch_share", "plan", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )

    assert result.returncode in {0, 1, 2, 4}, result.stderr
    assert "Traceback" not in result.stderr
