"""Take docs/screenshots/plan.png and result.png from the real page, against the emulator.

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
from selenium.webdriver.support.ui import WebDriverWait

from batch_share.emulator import Emulator, serve_in_thread
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
        finally:
            driver.quit()
    print(f"wrote {OUT / 'plan.png'} and {OUT / 'result.png'}")


if __name__ == "__main__":
    main()
