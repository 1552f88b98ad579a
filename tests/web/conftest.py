"""The page on a real server, and one headless Chromium for the whole session.

The page talks to the session's emulator with its key, as `serve --emulator` does. The
browser comes from Debian (`chromium`, `chromium-driver`); under CI (CI=true) a missing
browser fails the run instead of skipping, so the browser tests can never silently vanish.
"""

from __future__ import annotations

import base64
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from batch_share.emulator import ServerHandle
from batch_share.send.auth import Credentials
from batch_share.web import EmulatorInfo, ServeConfig
from batch_share.web.server import WebServer

from .webtools import UPLOAD_LIMIT

CHROMIUM = Path(os.environ.get("BATCH_SHARE_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("BATCH_SHARE_CHROMEDRIVER", "/usr/bin/chromedriver"))
BROWSER_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
)


@pytest.fixture(scope="session")
def web_server(
    emulator_server: ServerHandle, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WebServer]:
    secret = base64.b64decode(emulator_server.secret)
    info = EmulatorInfo(
        emulator_server.url, Credentials(emulator_server.key_id, secret, "emulator"), 50
    )
    root = tmp_path_factory.mktemp("serve")
    config = ServeConfig(
        port=0,
        work_dir=root / "work",
        emulator=info,
        state_dir=root / "state",
        max_upload_bytes=UPLOAD_LIMIT,
    )
    with WebServer(config) as server:
        yield server


@pytest.fixture
def web(web_server: WebServer, emulator: ServerHandle) -> WebServer:
    """The page, with no run in progress and the emulator reset."""
    active = web_server.state.active
    deadline = time.monotonic() + 30
    while active is not None and not active.done and time.monotonic() < deadline:
        time.sleep(0.02)
    emulator.state.reset()
    return web_server


@pytest.fixture(scope="session")
def browser_downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="session")
def browser(browser_downloads: Path) -> Iterator[WebDriver]:
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        message = (
            f"no browser: {CHROMIUM} and {CHROMEDRIVER} are needed "
            "(apt-get install chromium chromium-driver)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="batch-share-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*BROWSER_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.add_experimental_option(
        "prefs",
        {
            "download.default_directory": str(browser_downloads),
            "download.prompt_for_download": False,
        },
    )
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
