"""End-to-end tests of `batch-share plan`: the real command on real files, no network.

`plan` needs no credentials and sends nothing, so these tests run the CLI in-process with
typer's CliRunner, except where the entry point itself (`python -m batch_share`) is what
is being tested.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import SPEC_REPORT_COLUMNS
from openpyxl import Workbook
from typer.testing import CliRunner, Result

from batch_share.cli import app
from batch_share.emulator import device_id, service_id

SAMPLES = Path(__file__).resolve().parent.parent / "sample_sheets"

# messy.csv, row by row, as sample_sheets/README.md documents it: (row, column, code) of
# every problem `plan` must list. Row 8 names its service (looked up when it runs), row 17
# is valid until the server refuses it, row 21 is a
# duplicate (not a problem), and row 23 has three problems.
MESSY_PROBLEMS = {
    (3, "device_id", "missing-device-id"),
    (4, "device_id", "invalid-device-id"),
    (5, "device_id", "id-mangled"),
    (6, "device_id", "id-mangled"),
    (7, "device_id", "id-mangled"),
    (9, "email", "missing-email"),
    (10, "email", "invalid-email"),
    (11, "action", "unknown-action"),
    (12, "scripting", "invalid-boolean"),
    (13, "action", "leave-with-service"),
    (16, "email", "invalid-email"),
    (18, "email", "conflict"),
    (19, "email", "conflict"),
    (23, "device_id", "id-mangled"),
    (23, "email", "invalid-email"),
    (23, "action", "unknown-action"),
}


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(arg) for arg in args])


def problems_listed(output: str) -> set[tuple[int, str, str]]:
    """(row, column, code) of each `  row N, column: code: message` line of plan's output."""
    found = set()
    for line in output.splitlines():
        text = line.strip()
        if not text.startswith("row "):
            continue
        where, code, _ = text.split(": ", 2)
        row, column = where.removeprefix("row ").split(", ")
        found.add((int(row), column, code))
    return found


def read_csv_report(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def mutation_lines(output: str) -> list[dict[str, Any]]:
    """The JSON lines `--show-mutations` prints, one object per mutation."""
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


# --- the sample sheets --------------------------------------------------------------------


def test_messy_sample_lists_every_documented_problem_with_row_and_column() -> None:
    result = invoke("plan", SAMPLES / "messy.csv")

    assert result.exit_code == 1, result.output
    assert problems_listed(result.stdout) == MESSY_PROBLEMS
    assert "Traceback" not in result.output


def test_messy_sample_report_has_the_documented_status_of_every_row(tmp_path: Path) -> None:
    report = tmp_path / "messy-plan.csv"

    result = invoke("plan", SAMPLES / "messy.csv", "--report", report)

    assert result.exit_code == 1, result.output
    by_row: dict[int, list[tuple[str, str]]] = {}
    for line in read_csv_report(report):
        by_row.setdefault(int(line["row"]), []).append((line["status"], line["code"]))
    assert 14 not in by_row  # the blank row is skipped but keeps its number
    assert by_row[15] == [("not-run", "planned")] * 2
    assert by_row[16] == [("not-run", "planned"), ("invalid", "invalid-email")]
    assert by_row[17] == [("not-run", "planned")]
    assert by_row[18] == by_row[19] == [("conflict", "conflict")]
    assert by_row[23] == [("invalid", "id-mangled")]


def test_onboarding_sample_is_valid_and_shows_the_mutation_count() -> None:
    expected = json.loads(invoke("plan", SAMPLES / "onboarding.xlsx", "--json").stdout)

    result = invoke("plan", SAMPLES / "onboarding.xlsx")

    assert result.exit_code == 0, result.output
    assert expected["mutations"] > 0
    assert f"{expected['mutations']} mutations" in result.stdout
    assert result.stdout.rstrip().splitlines()[-1].endswith("exit 0")


def test_json_summary_is_parseable_and_carries_the_counts() -> None:
    result = invoke("plan", SAMPLES / "onboarding.xlsx", "--json")

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["rows"] == 15
    assert summary["lines"] == 21
    assert summary["mutations"] == 7
    assert summary["http_requests"] == 1
    assert summary["counts"]["not-run"] == 21
    assert summary["invalid"] == summary["conflicts"] == 0


def test_show_mutations_prints_the_variables_of_every_mutation() -> None:
    result = invoke("plan", SAMPLES / "onboarding.xlsx", "--show-mutations")

    assert result.exit_code == 0, result.output
    mutations = mutation_lines(result.stdout)
    assert [m["mutation"] for m in mutations] == [f"M{i:04d}" for i in range(1, 8)]
    first = mutations[0]
    assert first["deviceId"] == device_id(1)
    assert first["action"] == "ADD"
    assert first["email"] == [f"{name}@example.com" for name in ("ann", "bob", "cat", "dan", "eve")]
    assert {"scripting", "notify"} <= first.keys()
    assert any("services" in m for m in mutations)


def test_report_holds_every_planned_line_as_not_run(tmp_path: Path) -> None:
    report = tmp_path / "plan.csv"

    result = invoke("plan", SAMPLES / "onboarding.xlsx", "--report", report)

    assert result.exit_code == 0, result.output
    lines = read_csv_report(report)
    assert len(lines) == 21
    assert list(lines[0])[: len(SPEC_REPORT_COLUMNS)] == SPEC_REPORT_COLUMNS
    assert {(line["status"], line["code"]) for line in lines} == {("not-run", "planned")}
    assert all(line["mutation"] for line in lines)


# --- sheets that cannot be planned --------------------------------------------------------


def test_missing_file_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    result = invoke("plan", tmp_path / "nowhere.csv")

    assert result.exit_code == 2
    assert "nowhere.csv" in result.stderr
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_unknown_worksheet_is_a_usage_error_naming_it() -> None:
    result = invoke("plan", SAMPLES / "onboarding.xlsx", "--sheet", "Leavers")

    assert result.exit_code == 2
    assert "'Leavers'" in result.stderr
    assert "Traceback" not in result.output


def test_missing_required_column_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    sheet = tmp_path / "no-email.csv"
    sheet.write_text(f"device,action\n{device_id(1)},add\n", encoding="utf-8")

    result = invoke("plan", sheet)

    assert result.exit_code == 2
    assert "email" in result.stderr
    assert "missing" in result.stderr
    assert "Traceback" not in result.output


def test_sheet_with_only_a_header_is_refused_by_the_safety_guard(tmp_path: Path) -> None:
    sheet = tmp_path / "empty.csv"
    sheet.write_text("device_id,email\n", encoding="utf-8")

    result = invoke("plan", sheet)

    assert result.exit_code == 4, result.output


# --- help -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "expected"),
    [("plan", "--show-mutations"), ("run", "--allow-mass-removal"), ("emulator", "--port")],
)
def test_every_command_has_help(command: str, expected: str) -> None:
    result = invoke(command, "--help")

    assert result.exit_code == 0, result.output
    assert expected in result.stdout


def test_module_entry_point_has_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "batch_share", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    for command in ("plan", "run", "emulator"):
        assert command in result.stdout


# --- one sheet, every format ----------------------------------------------------------------

HEADER = ["Device", "Service", "E-mail", "Action", "Scripting", "Notify", "Note"]
ROWS = [
    [device_id(1), "", "ann@example.com, bob@example.com", "add", "", "", "Zoë's team"],
    [device_id(1), "", "carol@example.com", "ADD", "yes", "no", "café"],
    [device_id(2), service_id(2, 1), "dave@example.com", "share", "", "", "naïve"],
    [device_id(2), service_id(2, 2), "dave@example.com", "grant", "", "", ""],
    [device_id(3), "", "erin@example.com", "remove", "", "", "€ 5"],
    ["0012", "", "frank@example.com", "", "", "", "not an id"],
]


def write_csv(path: Path, *, encoding: str, delimiter: str = ",") -> Path:
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(HEADER)
        writer.writerows(ROWS)
    return path


def write_xlsx(path: Path) -> Path:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "Access"
    sheet.append(HEADER)
    for row in ROWS:
        sheet.append(row)
    for cells in sheet.iter_rows(min_row=2):
        for cell in cells:
            cell.number_format = "@"  # Text, as an admin formats ID columns
    workbook.save(path)
    return path


@pytest.fixture
def same_sheet_in_every_format(tmp_path: Path) -> list[Path]:
    return [
        write_csv(tmp_path / "plain.csv", encoding="utf-8"),
        write_csv(tmp_path / "bom.csv", encoding="utf-8-sig"),
        write_csv(tmp_path / "windows.csv", encoding="cp1252"),
        write_csv(tmp_path / "semicolon.csv", encoding="utf-8", delimiter=";"),
        write_xlsx(tmp_path / "workbook.xlsx"),
    ]


def test_every_format_gives_the_same_plan(same_sheet_in_every_format: list[Path]) -> None:
    plans = []
    for sheet in same_sheet_in_every_format:
        result = invoke("plan", sheet, "--json")
        assert result.exit_code == 1, f"{sheet.name}: {result.output}"
        summary = json.loads(result.stdout)
        plans.append({k: v for k, v in summary.items() if k not in {"sheet", "worksheet"}})

    assert plans[0]["lines"] == 7
    assert plans[0]["invalid"] == 1
    assert all(plan == plans[0] for plan in plans[1:]), plans


def test_every_format_gives_the_same_mutations(same_sheet_in_every_format: list[Path]) -> None:
    printed = [
        mutation_lines(invoke("plan", sheet, "--show-mutations").stdout)
        for sheet in same_sheet_in_every_format
    ]

    assert len(printed[0]) == 4
    assert all(mutations == printed[0] for mutations in printed[1:])


def test_every_format_gives_the_same_report_text(
    same_sheet_in_every_format: list[Path], tmp_path: Path
) -> None:
    """The extra column carries non-ASCII text: a wrong guess of the encoding shows here."""
    reports = []
    for index, sheet in enumerate(same_sheet_in_every_format):
        report = tmp_path / f"report-{index}.csv"
        invoke("plan", sheet, "--report", report)
        reports.append(read_csv_report(report))

    assert [line["Note"] for line in reports[0]] == [
        "Zoë's team",
        "Zoë's team",
        "café",
        "naïve",
        "",
        "€ 5",
        "not an id",
    ]
    assert all(report == reports[0] for report in reports[1:])
