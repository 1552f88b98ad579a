"""Shared fixtures: a real emulator server on loopback.

One server runs for the whole session (starting one per test would add a tenth of a second
each); the `emulator` fixture resets it before every test, so each test starts from the
seed shares, no faults and zero counters.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import Invoke
from typer.testing import CliRunner, Result

from batch_share.cli import app
from batch_share.emulator import Emulator, ServerHandle, serve_in_thread


@pytest.fixture(autouse=True)
def no_user_settings(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A settings file in the developer's own ~/.config must not change what tests see."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("xdg-config")))


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[ServerHandle]:
    with serve_in_thread(Emulator(devices=50)) as server:
        yield server


@pytest.fixture
def emulator(emulator_server: ServerHandle) -> ServerHandle:
    """The running emulator, reset: `.url`, `.key_id`, `.secret`, and `.state` (the live
    `Emulator`: faults, counters, `access()`)."""
    emulator_server.state.reset()
    return emulator_server


@pytest.fixture
def credentials_env(emulator: ServerHandle) -> dict[str, str]:
    """Environment for running the CLI in a subprocess against the emulator."""
    return {
        "R3_ACCESS_KEY_ID": emulator.key_id,
        "R3_SECRET_ACCESS_KEY": emulator.secret,
        "REMOTEIT_API_URL": emulator.url,
    }


@pytest.fixture
def invoke(emulator: ServerHandle, tmp_path: Path) -> Invoke:
    """The real CLI, in-process, against the emulator, with a state directory of its own."""
    env = {
        "R3_ACCESS_KEY_ID": emulator.key_id,
        "R3_SECRET_ACCESS_KEY": emulator.secret,
        "REMOTEIT_API_URL": emulator.url,
        "BATCH_SHARE_STATE_DIR": str(tmp_path / "state"),
    }

    def run(*args: str | Path) -> Result:
        return CliRunner().invoke(app, [str(arg) for arg in args], env=env)

    return run
