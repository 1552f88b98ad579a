"""The page in headless Chromium: upload, problems, dry run, apply, brake, progress, retry.

One browser serves the whole session; each screen is saved under .screenshots/.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait
from typer.testing import CliRunner

from batch_share.cli import app
from batch_share.emulator import ServerHandle
from batch_share.web.server import WebServer

from .webtools import SAMPLES, SHOTS

# messy.csv's documented problems (tests/test_cli_plan.py), by the sheet's own headers.
HEADERS = {"device_id": "Device", "service_id": "Service", "email": "E-mail", "action": "Action"}
HEADERS["scripting"] = "Scripting"
MESSY_CELLS = {
    (3, "Device", "missing-device-id"),
    (4, "Device", "invalid-device-id"),
    (5, "Device", "id-mangled"),
    (6, "Device", "id-mangled"),
    (7, "Device", "id-mangled"),
    (9, "E-mail", "missing-email"),
    (10, "E-mail", "invalid-email"),
    (11, "Action", "unknown-action"),
    (12, "Scripting", "invalid-boolean"),
    (13, "Action", "leave-with-service"),
    (16, "E-mail", "invalid-email"),
    (18, "E-mail", "conflict"),
    (19, "E-mail", "conflict"),
    (23, "Device", "id-mangled"),
    (23, "E-mail", "invalid-email"),
    (23, "Action", "unknown-action"),
}
# Row 8 names its service ("ssh"): offline it waits for the account, not a problem.
MESSY_WAITING = {(8, "Service", "name-not-resolved")}
# Columns of the report that depend on timing rather than on the sheet and the API: none in
# a CSV report today (elapsed time lives only in the XLSX summary); kept explicit.
TIMING_COLUMNS: frozenset[str] = frozenset()


def shot(driver: WebDriver, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(SHOTS / f"{name}.png"))


def wait(driver: WebDriver, condition: Callable[[WebDriver], object], limit: float = 30) -> None:
    WebDriverWait(driver, limit, poll_frequency=0.02).until(condition)


def find(driver: WebDriver, css: str) -> WebElement:
    return driver.find_element(By.CSS_SELECTOR, css)


def present(css: str) -> Callable[[WebDriver], bool]:
    return lambda driver: bool(driver.find_elements(By.CSS_SELECTOR, css))


def open_page(driver: WebDriver, web: WebServer) -> None:
    driver.get(web.url)
    wait(driver, present("#upload-form"))


def upload(driver: WebDriver, web: WebServer, sheet: Path) -> None:
    open_page(driver, web)
    find(driver, "#sheet-input").send_keys(str(sheet))
    find(driver, "#upload-button").click()
    wait(driver, present("#sheet-table"))


def wait_for_result(driver: WebDriver) -> None:
    wait(driver, present("#exit-code"))


def confirm(driver: WebDriver) -> None:
    """Click the confirmation and wait for the result. The confirmation page is itself a
    dry run's result, with an exit code of its own: wait for it to be replaced first, or a
    slow machine reads the old page."""
    page = find(driver, "html")
    find(driver, "#confirm-button").click()
    wait(driver, replaced(page))
    wait_for_result(driver)


def replaced(element: WebElement) -> Callable[[WebDriver], bool]:
    """True once the element's document is gone. Mid-navigation, chromedriver can answer
    with an inspector error ("Node with given id does not belong to the document")
    instead of a stale reference; that means "not settled yet", so ask again."""

    def check(driver: WebDriver) -> bool:
        try:
            element.is_enabled()
        except StaleElementReferenceException:
            return True
        except WebDriverException as error:
            if not mid_navigation(error):
                raise
        return False

    return check


def mid_navigation(error: WebDriverException) -> bool:
    return "does not belong to the document" in str(error)


def result_rows(driver: WebDriver) -> list[dict[str, str]]:
    """The result table as dicts, read in one script call (thousands of cells stay fast)."""
    table = driver.execute_script(
        "const t = document.getElementById('result-table');"
        "const head = [...t.tHead.rows[0].cells].map(c => c.textContent);"
        "return [...t.tBodies[0].rows].map(r => Object.fromEntries("
        "[...r.cells].map((c, i) => [head[i], c.textContent])));"
    )
    assert isinstance(table, list)
    return table


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def test_upload_marks_each_problem_cell_with_its_code(browser: WebDriver, web: WebServer) -> None:
    upload(browser, web, SAMPLES / "messy.csv")
    assert "EMULATOR" in find(browser, "#emulator-banner").text
    headers = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "#sheet-table thead th")]
    marked = set()
    for cell in browser.find_elements(By.CSS_SELECTOR, "#sheet-table td.problem"):
        row = int(cell.find_element(By.XPATH, "..").get_attribute("data-row") or 0)
        index = int(browser.execute_script("return arguments[0].cellIndex", cell))
        for code in (cell.get_attribute("data-codes") or "").split():
            marked.add((row, headers[index], code))
            assert code in cell.text  # the code is written in the cell, not only coloured
    assert marked == MESSY_CELLS
    waiting = set()
    for cell in browser.find_elements(By.CSS_SELECTOR, "#sheet-table td.waiting"):
        row = int(cell.find_element(By.XPATH, "..").get_attribute("data-row") or 0)
        index = int(browser.execute_script("return arguments[0].cellIndex", cell))
        waiting.add((row, headers[index], cell.get_attribute("data-codes")))
        assert "not-run" in cell.text
        assert "name-not-resolved" in cell.text
    assert waiting == MESSY_WAITING
    assert find(browser, "#n-named").text == "1"
    assert find(browser, "#n-problems").text == str(len(MESSY_CELLS))
    shot(browser, "1-plan")
    all_rows = len(browser.find_elements(By.CSS_SELECTOR, "#sheet-table tbody tr"))
    find(browser, "#only-problems").click()
    shown = list(browser.find_elements(By.CSS_SELECTOR, "#sheet-table tbody tr"))
    visible = [r for r in shown if r.is_displayed()]
    assert len({row for row, _, _ in MESSY_CELLS}) == len(visible) < all_rows
    shot(browser, "2-plan-only-problems")


def test_dry_run_sends_nothing(browser: WebDriver, web: WebServer, emulator: ServerHandle) -> None:
    upload(browser, web, SAMPLES / "messy.csv")
    find(browser, "#dry-run-button").click()
    wait_for_result(browser)
    shot(browser, "3-dry-run")
    rows = result_rows(browser)
    planned = [r for r in rows if r["status"] == "not-run"]
    assert planned
    # Row 8 names its service: a dry run stays offline, so it waits for the lookup.
    assert {r["code"] for r in planned} == {"planned", "name-not-resolved"}
    assert [r["row"] for r in planned if r["code"] == "name-not-resolved"] == ["8"]
    assert find(browser, "#exit-code").text == "1"  # as `run --dry-run`: some rows invalid
    assert emulator.state.counters.share_calls == []


def test_apply_matches_the_emulator_and_the_cli_report(
    browser: WebDriver,
    web: WebServer,
    emulator: ServerHandle,
    browser_downloads: Path,
    tmp_path: Path,
    credentials_env: dict[str, str],
) -> None:
    upload(browser, web, SAMPLES / "messy.csv")
    find(browser, "#apply-button").click()
    wait(browser, present("#confirm-numbers"))
    assert find(browser, "#confirm-adds").text == "6"
    assert find(browser, "#confirm-removals").text == "0"
    shot(browser, "4-confirm")
    confirm(browser)
    shot(browser, "5-result")
    rows = result_rows(browser)
    for row in rows:
        if row["status"] == "succeeded" and row["action"] == "ADD" and not row["service_id"]:
            assert row["email"].casefold() in emulator.state.access(row["device_id"])
    assert {r["status"] for r in rows} >= {"succeeded", "failed", "invalid", "conflict"}
    status_cells = browser.find_elements(By.CSS_SELECTOR, "#result-table td.status")
    assert all(cell.text in (cell.get_attribute("class") or "") for cell in status_cells)

    Select(find(browser, "#status-filter")).select_by_value("failed")
    visible = list(browser.find_elements(By.CSS_SELECTOR, "#result-table tbody tr"))
    assert {r.get_attribute("data-status") for r in visible if r.is_displayed()} == {"failed"}
    shot(browser, "6-result-failed-only")

    for old in browser_downloads.glob("*"):
        old.unlink()
    find(browser, "#download-csv").click()
    downloaded = browser_downloads / "messy.result.csv"
    deadline = time.monotonic() + 15
    while not downloaded.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    page_report = read_csv(downloaded)
    assert [r["status"] for r in page_report] == [r["status"] for r in rows]

    emulator.state.reset()
    cli_report = tmp_path / "cli.csv"
    result = CliRunner().invoke(
        app,
        [
            "run",
            str(SAMPLES / "messy.csv"),
            "--report",
            str(cli_report),
            "--state-dir",
            str(tmp_path / "state"),
        ],
        env=credentials_env,
    )
    assert result.exit_code == 1, result.output
    expected = read_csv(cli_report)
    assert len(page_report) == len(expected)
    for mine, theirs in zip(page_report, expected, strict=True):
        assert {k: v for k, v in mine.items() if k not in TIMING_COLUMNS} == {
            k: v for k, v in theirs.items() if k not in TIMING_COLUMNS
        }

    find(browser, "#retry-button").click()
    wait(browser, present("#sheet-table"))
    assert "retry" in find(browser, "h1").text
    assert find(browser, "#n-lines").text == str(
        sum(1 for r in page_report if r["status"] in {"failed", "not-run"})
    )
    shot(browser, "7-retry-plan")


def test_mass_removal_is_refused_with_the_brakes_message(
    browser: WebDriver, web: WebServer, emulator: ServerHandle
) -> None:
    upload(browser, web, SAMPLES / "offboarding.csv")
    refusal = find(browser, "#refusal-message").text
    assert refusal.startswith("refusing to remove")
    assert "--allow-mass-removal" in refusal
    assert "Allow mass removal" in find(browser, "#refusal-lift").text
    find(browser, "#apply-button").click()
    wait(browser, present("#confirm-numbers"))
    assert find(browser, "#refusal-message").text == refusal
    assert not browser.find_elements(By.CSS_SELECTOR, "#confirm-button")
    shot(browser, "8-brake")
    assert emulator.state.counters.share_calls == []


def test_progress_arrives_while_a_slow_run_sends(
    browser: WebDriver, web: WebServer, emulator: ServerHandle, tmp_path: Path
) -> None:
    from batch_share.emulator import device_id

    sheet = tmp_path / "slow.csv"
    sheet.write_text(
        "device_id,email\n" + "".join(f"{device_id(i)},p{i}@example.com\n" for i in range(1, 46)),
        encoding="utf-8",
    )
    emulator.state.faults.latency = 0.4
    upload(browser, web, sheet)
    concurrency = find(browser, "#concurrency")
    concurrency.clear()
    concurrency.send_keys("1")
    find(browser, "#apply-button").click()
    wait(browser, present("#confirm-button"))
    find(browser, "#confirm-button").click()
    wait(browser, present("#progress"))
    seen: list[str] = []

    def partway(driver: WebDriver) -> bool:
        """The progress page gives way to the result when the run ends; an element read
        as that happens is gone, which only means "not partway yet"."""
        try:
            if not driver.find_elements(By.ID, "p-done"):
                return False
            done = driver.find_element(By.ID, "p-done").text
            seen.append(done)
            return done not in {"0", find(driver, "#p-total").text}
        except StaleElementReferenceException:
            return False
        except WebDriverException as error:
            if not mid_navigation(error):
                raise
            return False

    wait(browser, partway)
    shot(browser, "9-progress")
    wait_for_result(browser)
    assert find(browser, "#exit-code").text == "0"


@pytest.mark.parametrize("payload", ["<img src=x onerror=alert(1)>"])
def test_html_in_a_cell_is_shown_as_text(
    browser: WebDriver, web: WebServer, tmp_path: Path, payload: str
) -> None:
    sheet = tmp_path / "xss.csv"
    sheet.write_text(f"device_id,email,note\n{payload},{payload},{payload}\n", encoding="utf-8")
    upload(browser, web, sheet)
    cells = browser.find_elements(By.CSS_SELECTOR, "#sheet-table tbody td")
    assert [cell.text.splitlines()[0] for cell in cells] == [payload] * 3
    assert not browser.find_elements(By.CSS_SELECTOR, "#sheet-table img")
    shot(browser, "10-escaped")


def choose_mode(driver: WebDriver, mode: str) -> None:
    Select(find(driver, "#mode")).select_by_value(mode)


def diff_table(driver: WebDriver) -> dict[str, list[str]]:
    """The difference per device as shown: device -> its `+`/`-`/`=`/`!` lines."""
    table = driver.execute_script(
        "return Object.fromEntries([...document.querySelectorAll('#diff-table tbody tr')]"
        ".map(r => [r.dataset.device, [...r.querySelectorAll('li')].map(l => l.textContent)]));"
    )
    assert isinstance(table, dict)
    return table


def test_sync_shows_the_difference_then_applying_it_leaves_the_roster(
    browser: WebDriver, web: WebServer, emulator: ServerHandle, tmp_path: Path
) -> None:
    from batch_share.emulator import device_id, service_id

    d1, d2 = device_id(1), device_id(2)
    state = emulator.state
    state.grant(d1, "keep@example.com", scripting=True)
    state.grant(d1, "drop@example.com")
    state.grant(d2, "stay1@example.com")
    state.grant(d2, "stay2@example.com")
    state.grant(d2, "old@example.com", service_id=service_id(2, 1))
    sheet = tmp_path / "roster.csv"
    sheet.write_text(
        "device_id,service_id,email,scripting\n"
        f"{d1},,keep@example.com,yes\n"
        f"{d1},,new@example.com,yes\n"
        "Front Desk PC,,stay1@example.com,\n"  # device 2, by name
        f"{d2},,stay2@example.com,\n"
        f"{d2},{service_id(2, 2)},svc@example.com,\n",
        encoding="utf-8",
    )
    upload(browser, web, sheet)
    choose_mode(browser, "sync")
    assert find(browser, "#sync-h").is_displayed()
    assert not find(browser, "#plan-h").is_displayed()
    find(browser, "#dry-run-button").click()
    wait_for_result(browser)
    shot(browser, "11-sync-dry-run")
    assert diff_table(browser) == {
        d1: ["+ new@example.com (scripting)", "- drop@example.com", "= 1 unchanged"],
        d2: [
            f"+ svc@example.com service {service_id(2, 2)}",
            f"- old@example.com service {service_id(2, 1)}",
            "= 2 unchanged",
        ],
    }
    assert find(browser, "#diff-total").text == (
        "difference: 2 to add, 2 to remove, 3 unchanged on 2 devices"
    )
    assert state.counters.share_calls == []
    rows = result_rows(browser)
    removals = [(r["email"], r["action"], r["status"], r["code"]) for r in rows if not r["row"]]
    assert removals == [
        ("drop@example.com", "REMOVE", "not-run", "planned"),
        ("old@example.com", "REMOVE", "not-run", "planned"),
    ]
    named = next(r for r in rows if r["email"] == "stay1@example.com")
    assert (named["device_id"], named["device_name"], named["code"]) == (
        d2,
        "Front Desk PC",
        "unchanged",
    )

    assert (find(browser, "#confirm-adds").text, find(browser, "#confirm-removals").text) == (
        "2",
        "2",
    )
    confirm(browser)
    assert find(browser, "#exit-code").text == "0"
    assert state.access(d1) == {"keep@example.com": True, "new@example.com": True}
    assert state.access(d2) == {"stay1@example.com": False, "stay2@example.com": False}
    assert state.service_grants(service_id(2, 1)) == set()
    assert state.service_grants(service_id(2, 2)) == {"svc@example.com"}
    rows = result_rows(browser)
    applied = [(r["email"], r["status"], r["message"]) for r in rows if not r["row"]]
    assert applied == [
        ("drop@example.com", "succeeded", "not in sheet"),
        ("old@example.com", "succeeded", "not in sheet"),
    ]


def test_a_sync_report_is_retried_with_run(
    browser: WebDriver, web: WebServer, emulator: ServerHandle, tmp_path: Path
) -> None:
    from batch_share.emulator import device_id

    d3, d6 = device_id(3), device_id(6)
    emulator.state.grant(d6, "kept@example.com")
    emulator.state.grant(d6, "also@example.com")
    sheet = tmp_path / "roster.csv"
    sheet.write_text(
        f"device_id,email\n{d3},ok@example.com\n{d3},henry@unregistered.example\n"
        f"{d6},also@example.com\n{d6},not-an-email\n",
        encoding="utf-8",
    )
    upload(browser, web, sheet)
    choose_mode(browser, "sync")
    find(browser, "#apply-button").click()
    wait(browser, present("#confirm-button"))
    assert find(browser, "h1").text.startswith("Apply (sync, scope sheet)")
    assert diff_table(browser)[d6] == [
        "= 1 unchanged",
        "! 1 removals held back: the device has unclear rows",
    ]
    confirm(browser)
    rows = [(r["row"], r["email"], r["status"], r["code"]) for r in result_rows(browser)]
    assert rows == [
        ("2", "ok@example.com", "succeeded", ""),
        ("3", "henry@unregistered.example", "failed", rows[1][3]),
        ("4", "also@example.com", "succeeded", "unchanged"),
        ("5", "not-an-email", "invalid", "invalid-email"),
        ("", "kept@example.com", "not-run", "unclear-device"),
    ]
    assert "kept@example.com" in emulator.state.access(d6)
    find(browser, "#retry-button").click()
    wait(browser, present("#sheet-table"))
    assert "retry" in find(browser, "h1").text
    assert "--only failed,not-run" in find(browser, "#retry-note").text
    assert not browser.find_elements(By.CSS_SELECTOR, "select#mode")  # always run
    # The held-back removal is not replayed: that access was kept on purpose.
    assert find(browser, "#n-lines").text == "1"
    find(browser, "#dry-run-button").click()
    wait_for_result(browser)
    assert "(sync" not in find(browser, "h1").text
    replayed = [(r["row"], r["email"], r["action"]) for r in result_rows(browser)]
    assert replayed == [("3", "henry@unregistered.example", "ADD")]


def test_a_sync_removing_most_of_todays_access_is_refused_by_the_brake(
    browser: WebDriver, web: WebServer, emulator: ServerHandle, tmp_path: Path
) -> None:
    from batch_share.emulator import device_id

    for name in ("a", "b", "c"):
        emulator.state.grant(device_id(5), f"{name}@example.com")
    sheet = tmp_path / "roster.csv"
    sheet.write_text(f"device_id,email\n{device_id(5)},a@example.com\n", encoding="utf-8")
    upload(browser, web, sheet)
    choose_mode(browser, "sync")
    find(browser, "#apply-button").click()
    wait(browser, present("#refusal-message"))
    wait_for_result(browser)
    shot(browser, "12-sync-brake")
    refusal = find(browser, "#refusal-message").text
    assert refusal.startswith("refusing to remove 2 shares (67% of today's 3 shares")
    assert "--allow-mass-removal" in refusal
    assert "Allow mass removal" in find(browser, "#refusal-lift").text
    assert not browser.find_elements(By.CSS_SELECTOR, "#confirm-button")
    assert "safety guard" in find(browser, "#apply-blocked").text
    assert emulator.state.counters.share_calls == []
    assert set(emulator.state.access(device_id(5))) == {f"{n}@example.com" for n in "abc"}


def test_names_resolve_when_applied_and_the_result_shows_them(
    browser: WebDriver, web: WebServer, emulator: ServerHandle, tmp_path: Path
) -> None:
    from batch_share.emulator import device_id, service_id

    sheet = tmp_path / "names.csv"
    sheet.write_text(
        "device,service,email\n"
        "Lobby Camera,,ann@example.com\n"
        "Warehouse NAS,ssh,bob@example.com\n"
        "Lobby Camra,,cat@example.com\n",
        encoding="utf-8",
    )
    upload(browser, web, sheet)
    assert find(browser, "#n-named").text == "3"
    waiting = browser.find_elements(By.CSS_SELECTOR, "#sheet-table td.waiting")
    assert [cell.text.splitlines()[0] for cell in waiting] == [
        "Lobby Camera",
        "Warehouse NAS",
        "ssh",
        "Lobby Camra",
    ]
    find(browser, "#apply-button").click()
    wait(browser, present("#confirm-button"))
    assert find(browser, "#confirm-named").text == "3"
    confirm(browser)
    shot(browser, "13-names")
    rows = {r["email"]: r for r in result_rows(browser)}
    ann, bob, cat = rows["ann@example.com"], rows["bob@example.com"], rows["cat@example.com"]
    assert (ann["device_id"], ann["device_name"], ann["status"]) == (
        device_id(1),
        "Lobby Camera",
        "succeeded",
    )
    assert (bob["device_id"], bob["service_id"], bob["service_name"], bob["status"]) == (
        device_id(4),
        service_id(4, 1),
        "ssh",
        "succeeded",
    )
    assert (cat["status"], cat["code"]) == ("invalid", "unknown-device-name")
    assert "Lobby Camera" in cat["message"]  # the closest names are suggested
    problem = find(browser, "#result-table tr[data-status=invalid] td.problem")
    assert problem.text == "unknown-device-name"
    assert "ann@example.com" in emulator.state.access(device_id(1))
    assert "bob@example.com" in emulator.state.service_access(service_id(4, 1))
