"""Take docs/screenshots/plan.png, result.png and sync.png from the real page, against the
emulator (sync.png: a sync dry run's difference, on seeded access).

    make screenshots

Needs Chromium and chromedriver (Debian: apt-get install chromium chromium-driver).
"""

from __future__ import annotations

import base64
import tempfile
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from batch_share.emulator import Emulator, device_id, serve_in_thread, service_id
from batch_share.emulator.state import SeedGrant
from batch_share.send.auth import Credentials
from batch_share.web import EmulatorInfo, ServeConfig
from batch_share.web.server import WebServer

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
    "--hide-scrollbars",
)

# Today's access for the sync picture, and the roster it is synced to: one device gains and
# loses someone, one loses a service share, one names its device and stays as it is.
SYNC_ACCESS = [
    SeedGrant(device_id(1), "ann@example.com", scripting=True),
    SeedGrant(device_id(1), "leaver@example.com"),
    SeedGrant(device_id(2), "bob@example.com"),
    SeedGrant(device_id(2), "contractor@example.com", service_id=service_id(2, 1)),
    SeedGrant(device_id(4), "cat@example.com"),
]
SYNC_ROSTER = (
    "device_id,device_name,email,scripting\n"
    f"{device_id(1)},,ann@example.com,yes\n"
    f"{device_id(1)},,newhire@example.com,\n"
    f"{device_id(2)},,bob@example.com,\n"
    ",Warehouse NAS,cat@example.com,\n"
)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for flag in (*FLAGS, f"--user-data-dir={scratch}/profile"):
            options.add_argument(flag)
        driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
        wait = WebDriverWait(driver, 30, poll_frequency=0.05)
        try:
            with serve_in_thread(Emulator(devices=50)) as emulator:
                secret = base64.b64decode(emulator.secret)
                info = EmulatorInfo(
                    emulator.url, Credentials(emulator.key_id, secret, "emulator"), 50
                )
                config = ServeConfig(
                    port=0,
                    work_dir=Path(scratch) / "work",
                    emulator=info,
                    state_dir=Path(scratch) / "state",
                )
                with WebServer(config) as web:
                    driver.get(web.url)
                    wait.until(lambda d: d.find_elements(By.ID, "sheet-input"))
                    sheet = ROOT / "sample_sheets" / "messy.csv"
                    driver.find_element(By.ID, "sheet-input").send_keys(str(sheet))
                    driver.find_element(By.ID, "upload-button").click()
                    wait.until(lambda d: d.find_elements(By.ID, "sheet-table"))
                    driver.find_element(By.ID, "sheet-h").location_once_scrolled_into_view  # noqa: B018
                    driver.save_screenshot(str(OUT / "plan.png"))
                    driver.find_element(By.ID, "apply-button").click()
                    wait.until(lambda d: d.find_elements(By.ID, "confirm-button"))
                    driver.find_element(By.ID, "confirm-button").click()
                    wait.until(lambda d: d.find_elements(By.ID, "exit-code"))
                    driver.save_screenshot(str(OUT / "result.png"))
                    emulator.state.seed_access(SYNC_ACCESS)
                    driver.get(web.url)
                    wait.until(lambda d: d.find_elements(By.ID, "sheet-input"))
                    roster = Path(scratch) / "roster.csv"
                    roster.write_text(SYNC_ROSTER, encoding="utf-8")
                    driver.find_element(By.ID, "sheet-input").send_keys(str(roster))
                    driver.find_element(By.ID, "upload-button").click()
                    wait.until(lambda d: d.find_elements(By.ID, "sheet-table"))
                    Select(driver.find_element(By.ID, "mode")).select_by_value("sync")
                    driver.find_element(By.ID, "apply-button").click()
                    wait.until(lambda d: d.find_elements(By.ID, "confirm-button"))
                    driver.save_screenshot(str(OUT / "sync.png"))
        finally:
            driver.quit()
    print(f"wrote {OUT / 'plan.png'}, {OUT / 'result.png'} and {OUT / 'sync.png'}")


if __name__ == "__main__":
    main()
