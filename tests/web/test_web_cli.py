"""`batch-share serve` as a user starts it: the printed URL, the emulator banner, the extra."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from helpers import WAIT_LIMIT
from typer.testing import CliRunner

from batch_share.cli import app
from batch_share.web.server import WebServer

from .webtools import SAMPLES, client, job_path, same_origin, upload


def test_serve_prints_a_tokened_url_and_marks_the_emulator_everywhere(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "batch_share",
            "serve",
            "--no-open",
            "--port",
            "0",
            "--emulator",
            "--state-dir",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = ""
        for line in process.stdout:
            found = re.search(r"(http://127\.0\.0\.1:\d+/\?token=([\w-]+))", line)
            if found:
                url, token = found.group(1), found.group(2)
                break
        assert url, "no URL printed"
        assert len(token) >= 43  # 32 random bytes, base64url: at least 128 bits
        with httpx.Client(follow_redirects=True, timeout=WAIT_LIMIT) as session:
            page = session.get(url)
            assert page.status_code == 200
            assert "EMULATOR" in page.text
            assert httpx.get(url.split("?")[0]).status_code == 403
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=WAIT_LIMIT)
    assert token not in stderr  # the access log would print it; it is off


def test_serve_without_the_web_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "jinja2" else real(name, *a)
    )
    result = CliRunner().invoke(app, ["serve", "--no-open"])
    assert result.exit_code == 2
    assert "batch-share[web]" in result.output


def test_serve_refuses_an_unknown_scope() -> None:
    result = CliRunner().invoke(app, ["serve", "--no-open", "--scope", "galaxy"])
    assert result.exit_code == 2


def test_a_workbook_gets_a_worksheet_picker(web: WebServer, tmp_path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    first = book.active
    assert first is not None
    first.title = "Readme"
    first.append(["device_id", "email"])
    first.append(["80:00:00:00:01:00:00:01", "a@example.com"])
    second = book.create_sheet("Access")
    second.append(["device_id", "email"])
    second.append(["80:00:00:00:01:00:00:02", "b@example.com"])
    second.append(["80:00:00:00:01:00:00:03", "c@example.com"])
    path = tmp_path / "two.xlsx"
    book.save(path)
    with client(web) as session:
        plan = upload(web, session, path)
        page = session.get(plan).text
        assert '<option value="Access"' in page
        picked = session.get(plan, params={"sheet": "Access"}).text
        assert 'id="n-rows">2<' in picked
        assert session.get(plan, params={"sheet": "Nope"}).status_code == 404


def test_an_unreadable_sheet_is_shown_not_crashed(web: WebServer, tmp_path: Path) -> None:
    path = tmp_path / "notes.pdf"
    path.write_bytes(b"%PDF-1.4")
    with client(web) as session:
        response = session.post(
            "/upload",
            data={"csrf": web.config.csrf},
            files={"sheet": (path.name, path.read_bytes())},
            headers=same_origin(web),
        )
        assert response.status_code == 422
        assert "unsupported file type" in response.text
        empty = session.post("/upload", data={"csrf": web.config.csrf}, headers=same_origin(web))
        assert empty.status_code == 400


def test_one_run_at_a_time_and_the_events_resume(web: WebServer, emulator: object) -> None:
    from batch_share.emulator import ServerHandle

    assert isinstance(emulator, ServerHandle)
    emulator.state.faults.latency = 0.3
    with client(web) as session:
        plan = upload(web, session, SAMPLES / "messy.csv")
        form = {"csrf": web.config.csrf, "go": "apply", "confirmed": "yes", "concurrency": "1"}
        first = session.post(f"{plan}/start", data=form, headers=same_origin(web))
        job = job_path(first)
        assert 'id="progress"' in first.text
        second = session.post(f"{plan}/start", data=form, headers=same_origin(web))
        assert second.status_code == 409
        with session.stream("GET", f"{job}/events", headers={"last-event-id": "0"}) as stream:
            lines = [line for line in stream.iter_lines() if line.startswith("id: ")]
        assert lines[0] == "id: 1"  # resumed after event 0
        assert session.get(f"{job}/report.xlsx").content[:2] == b"PK"
        assert session.get(f"{job}/report.pdf").status_code == 404
        assert session.get("/jobs/nope/events").status_code == 404
        assert session.get("/jobs/nope/report.csv").status_code == 404
        assert session.get("/sheets/nope").status_code == 404


@pytest.mark.parametrize(
    ("field", "value"),
    [("rate", "fast"), ("rate", "0"), ("mode", "export"), ("scope", "galaxy"), ("go", "later")],
)
def test_bad_settings_are_refused(web: WebServer, field: str, value: str) -> None:
    with client(web) as session:
        plan = upload(web, session, SAMPLES / "messy.csv")
        form = {"csrf": web.config.csrf, "go": "dry-run", field: value}
        response = session.post(f"{plan}/start", data=form, headers=same_origin(web))
        assert response.status_code == 400


def test_a_confirmed_sync_is_still_judged_by_the_brake(
    web: WebServer, emulator: object, tmp_path: Path
) -> None:
    """The confirmation is a page step, not a pass: an apply posted straight away meets the
    brake inside the job, as `sync` on the command line does (exit 4, nothing sent)."""
    import json

    from batch_share.emulator import ServerHandle, device_id

    assert isinstance(emulator, ServerHandle)
    handle = emulator
    for name in ("a", "b", "c"):
        handle.state.grant(device_id(7), f"{name}@example.com")
    sheet = tmp_path / "roster.csv"
    sheet.write_text(f"device_id,email\n{device_id(7)},a@example.com\n", encoding="utf-8")
    with client(web) as session:
        plan = upload(web, session, sheet)
        form = {
            "csrf": web.config.csrf,
            "go": "apply",
            "confirmed": "yes",
            "mode": "sync",
            "scope": "sheet",
        }
        job = job_path(session.post(f"{plan}/start", data=form, headers=same_origin(web)))
        with session.stream("GET", f"{job}/events") as stream:
            events = [
                json.loads(line[len("data: ") :])
                for line in stream.iter_lines()
                if line.startswith("data: ")
            ]
        page = session.get(job).text
    by_type = {event["type"]: event for event in events}
    assert by_type["diff"]["devices"] == [
        {
            "device_id": device_id(7),
            "name": "",
            "lines": ["- b@example.com", "- c@example.com", "= 1 unchanged"],
        }
    ]
    assert by_type["diff"]["total"].startswith("difference: 0 to add, 2 to remove")
    assert by_type["guard"]["warning"] is False
    assert by_type["done"]["exit_code"] == 4
    assert "The safety guard refused this run" in page
    assert 'id="confirm-button"' not in page
    assert handle.state.counters.share_calls == []
