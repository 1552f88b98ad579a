"""Settings files through the real CLI: where they are found, what wins, what is refused.

Every test writes a real TOML file and runs the real command with typer's CliRunner; the
`config` command's JSON is the witness for precedence, and a plan's own output for effect.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from helpers import write_sheet
from typer.testing import CliRunner, Result

from batch_share.cli import app
from batch_share.emulator import ServerHandle, device_id
from batch_share.send.auth import load_credentials
from batch_share.settings import Entry, Settings, find_settings_file, read_settings

SECRET_TEXT = "c2VjcmV0"  # base64 of "secret"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean current directory and environment: no stray ./batch-share.toml, no R3_*."""
    monkeypatch.chdir(tmp_path)
    for name in ("R3_PROFILE", "R3_ACCESS_KEY_ID", "R3_SECRET_ACCESS_KEY", "REMOTEIT_API_URL"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def cli(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env=env)


def settings_of(*args: str, env: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    result = cli(*args, env=env)
    assert result.exit_code == 0, result.output
    return {row["key"]: row for row in json.loads(result.stdout)["settings"]}


def test_precedence_is_command_line_then_environment_then_file_then_default(
    workdir: Path,
) -> None:
    settings = workdir / "nightly.toml"
    settings.write_text(
        'api-url = "http://127.0.0.1:1/graphql/v1"\n\n[run]\nrate = 3.0\nmax-removals = 20\n',
        encoding="utf-8",
    )
    env = {"REMOTEIT_API_URL": "http://127.0.0.1:2/graphql/v1"}

    rows = settings_of("--config", str(settings), "config", "--json", "--", "--rate", "5", env=env)

    assert rows["rate"] == {"key": "rate", "value": 5.0, "source": "command line", "where": None}
    assert rows["api-url"]["value"] == "http://127.0.0.1:2/graphql/v1"
    assert rows["api-url"]["source"] == "environment"
    assert rows["api-url"]["where"] == "REMOTEIT_API_URL"
    assert rows["max-removals"] == {
        "key": "max-removals",
        "value": 20,
        "source": "file",
        "where": f"{settings}:5",
    }
    assert rows["concurrency"]["source"] == "default"
    assert rows["concurrency"]["value"] == 8


def test_a_command_table_beats_the_top_level_and_touches_only_its_command(workdir: Path) -> None:
    (workdir / "batch-share.toml").write_text(
        "max-removals = 7\n[plan]\nmax-removals = 9\n", encoding="utf-8"
    )

    assert settings_of("config", "--command", "plan", "--json")["max-removals"]["value"] == 9
    assert settings_of("config", "--command", "run", "--json")["max-removals"]["value"] == 7


def test_a_file_setting_changes_what_the_command_does(workdir: Path) -> None:
    sheet = write_sheet(workdir / "s.csv", [[device_id(1), "", "ann@example.com", "", "", "", ""]])
    (workdir / "batch-share.toml").write_text("[plan]\njson = true\n", encoding="utf-8")

    result = cli("plan", str(sheet))

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["command"] == "plan"


def test_the_file_is_found_in_the_current_directory_before_the_user_config(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    xdg = workdir / "xdg"
    (xdg / "batch-share").mkdir(parents=True)
    user = xdg / "batch-share" / "config.toml"
    user.write_text("max-removals = 1\n", encoding="utf-8")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg))
    elsewhere = workdir / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    assert settings_of("config", "--json")["max-removals"]["where"] == f"{user}:1"

    (elsewhere / "batch-share.toml").write_text("max-removals = 2\n", encoding="utf-8")
    assert settings_of("config", "--json")["max-removals"]["value"] == 2
    assert find_settings_file(None) == elsewhere / "batch-share.toml"


def test_user_config_defaults_to_dot_config_under_home(tmp_path: Path) -> None:
    user = tmp_path / ".config" / "batch-share" / "config.toml"
    user.parent.mkdir(parents=True)
    user.write_text("", encoding="utf-8")

    assert find_settings_file(None, cwd=tmp_path / "x", environ={"HOME": str(tmp_path)}) == user
    assert find_settings_file(None, cwd=tmp_path, environ={"HOME": str(tmp_path / "no")}) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("max-removal = 3\n", [":1", "max-removal", "unknown key"]),
        ("\n[run]\nrate = 'fast'\n", [":3", "rate must be a number", "'fast'"]),
        ("[run]\nconcurrency = 0\n", [":2", "concurrency", "not in the range x>=1"]),
        ("[run]\nmax-removals = '20'\n", [":2", "max-removals must be a whole number"]),
        ("[run]\ndry-run = 'yes'\n", [":2", "dry-run must be true or false"]),
        ("[plan]\nverify = true\n", [":2", "verify", "not an option of `plan`"]),
        ("[runn]\nrate = 1\n", ["[runn] is not a command"]),
        ("runn = {}\n", [":1", "no command 'runn'"]),
        ("[run]\nrate = = 1\n", ["Invalid", "line 2"]),
        ("# nightly\nR3_SECRET_ACCESS_KEY = 'x'\n", [":2", "secret", "~/.remoteit/credentials"]),
        ("[emulator]\nsecret = 'x'\n", [":2", "'secret'", "~/.remoteit/credentials"]),
    ],
)
def test_a_bad_file_is_exit_2_naming_file_key_and_line(
    workdir: Path, text: str, expected: list[str]
) -> None:
    path = workdir / "bad.toml"
    path.write_text(text, encoding="utf-8")
    sheet = write_sheet(workdir / "s.csv", [[device_id(1), "", "ann@example.com", "", "", "", ""]])

    result = cli("--config", str(path), "plan", str(sheet))

    assert result.exit_code == 2
    assert str(path) in result.stderr
    for fragment in expected:
        assert fragment in result.stderr


def test_secret_values_never_echoed(workdir: Path) -> None:
    path = workdir / "bad.toml"
    path.write_text("R3_SECRET_ACCESS_KEY = 'hunter2-very-secret'\n", encoding="utf-8")

    result = cli("--config", str(path), "config")

    assert result.exit_code == 2
    assert "hunter2" not in result.output


def test_a_missing_explicit_file_is_an_error_not_a_fallback(workdir: Path) -> None:
    result = cli("--config", str(workdir / "moved.toml"), "config")

    assert result.exit_code == 2
    assert "moved.toml does not exist" in result.stderr


def test_a_file_that_is_not_utf8_is_refused(workdir: Path) -> None:
    path = workdir / "latin.toml"
    path.write_bytes(b"sheet = '\xe9t\xe9'\n")

    result = cli("--config", str(path), "config")

    assert result.exit_code == 2
    assert "not UTF-8" in result.stderr


def test_config_text_lists_every_option_with_its_source(workdir: Path) -> None:
    path = workdir / "batch-share.toml"
    path.write_text("[run]\nretries = 1\n", encoding="utf-8")

    result = cli("config", env={"R3_PROFILE": "nightly"})

    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert f"file {path}:2" in lines["retries"]
    assert "environment R3_PROFILE" in lines["profile"]
    assert lines["rate"].endswith("default")
    assert result.stdout.startswith(f"settings file: {path}")


def test_config_of_an_unknown_command_is_exit_2(workdir: Path) -> None:
    result = cli("config", "--command", "nope")

    assert result.exit_code == 2
    assert "no command 'nope'" in result.stderr


def test_config_shows_repeatable_options_as_lists(workdir: Path) -> None:
    path = workdir / "batch-share.toml"
    path.write_text("[emulator]\nfailing-device = ['a', 'b']\n", encoding="utf-8")

    rows = settings_of("config", "--command", "emulator", "--json")
    text = cli("config", "--command", "emulator")

    assert rows["failing-device"]["value"] == ["a", "b"]
    assert "a, b" in text.stdout
    assert "(none)" in text.stdout  # the other repeatable options, unset


def test_line_numbers_follow_tables_dotted_keys_and_quotes(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(
        'rate = 1.0\n\n[plan]\nrate = 2.0\n"quiet" = true\n[run]\nrate = 3.0\n',
        encoding="utf-8",
    )

    lines = {(e.table, e.key): e.line for e in read_settings(path).entries}

    assert lines == {
        (None, "rate"): 1,
        ("plan", "rate"): 4,
        ("plan", "quiet"): 5,
        ("run", "rate"): 7,
    }


def test_settings_where_names_path_and_line(tmp_path: Path) -> None:
    assert Settings(tmp_path / "a.toml").where(Entry("k", 1, 3, None)) == f"{tmp_path / 'a.toml'}:3"


# --- --profile and the R3_* environment ---------------------------------------------------

CREDENTIALS = f"""[default]
R3_ACCESS_KEY_ID = default-id
R3_SECRET_ACCESS_KEY = {SECRET_TEXT}

[work]
R3_ACCESS_KEY_ID = work-id
R3_SECRET_ACCESS_KEY = {SECRET_TEXT}
"""


def credentials_home(tmp_path: Path) -> Path:
    folder = tmp_path / ".remoteit"
    folder.mkdir()
    (folder / "credentials").write_text(CREDENTIALS, encoding="utf-8")
    (folder / "credentials").chmod(0o600)
    return tmp_path


def test_an_explicit_profile_wins_over_r3_keys_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    home = credentials_home(tmp_path)
    env = {"R3_ACCESS_KEY_ID": "env-id", "R3_SECRET_ACCESS_KEY": SECRET_TEXT}

    with caplog.at_level(logging.WARNING, logger="batch_share"):
        credentials = load_credentials("work", environ=env, home=home)

    assert credentials.key_id == "work-id"
    assert [r.getMessage() for r in caplog.records] == [
        "--profile work wins over R3_ACCESS_KEY_ID/R3_SECRET_ACCESS_KEY in the environment"
    ]


@pytest.mark.parametrize(
    ("environ", "configured", "expected"),
    [
        ({"R3_ACCESS_KEY_ID": "env-id", "R3_SECRET_ACCESS_KEY": SECRET_TEXT}, "work", "env-id"),
        ({"R3_PROFILE": "default"}, "work", "default-id"),
        ({}, "work", "work-id"),
        ({}, None, "default-id"),
    ],
)
def test_r3_profile_and_the_settings_profile_stay_below_r3_keys(
    tmp_path: Path, environ: dict[str, str], configured: str | None, expected: str
) -> None:
    home = credentials_home(tmp_path)

    credentials = load_credentials(None, environ=environ, home=home, configured_profile=configured)

    assert credentials.key_id == expected


def test_run_takes_its_profile_from_the_settings_file(workdir: Path) -> None:
    sheet = write_sheet(workdir / "s.csv", [[device_id(1), "", "ann@example.com", "", "", "", ""]])
    home = workdir / "home"
    home.mkdir()
    credentials_home(home)
    (workdir / "batch-share.toml").write_text("[run]\nprofile = 'absent'\n", encoding="utf-8")

    result = cli("run", str(sheet), "--report", str(workdir / "r.csv"), env={"HOME": str(home)})

    assert result.exit_code == 2
    assert "no profile 'absent'" in result.stderr


def test_run_profile_on_the_command_line_beats_r3_keys(workdir: Path) -> None:
    sheet = write_sheet(workdir / "s.csv", [[device_id(1), "", "ann@example.com", "", "", "", ""]])
    home = workdir / "home"
    home.mkdir()
    credentials_home(home)
    env = {"HOME": str(home), "R3_ACCESS_KEY_ID": "env-id", "R3_SECRET_ACCESS_KEY": SECRET_TEXT}

    result = cli(
        "run", str(sheet), "--report", str(workdir / "r.csv"), "--profile", "absent", env=env
    )

    assert result.exit_code == 2
    assert "--profile absent wins over R3_ACCESS_KEY_ID" in result.stderr
    assert "no profile 'absent'" in result.stderr


# --- --version and completion --------------------------------------------------------------


def test_version_is_the_package_version(workdir: Path) -> None:
    from batch_share import __version__

    result = cli("--version")

    assert result.exit_code == 0
    assert result.stdout == f"batch-share {__version__}\n"


def test_version_works_even_with_a_broken_settings_file(workdir: Path) -> None:
    (workdir / "batch-share.toml").write_text("nonsense = 1\n", encoding="utf-8")

    assert cli("--version").exit_code == 0


def test_completion_can_be_shown(workdir: Path) -> None:
    result = CliRunner().invoke(
        app, ["--show-completion", "bash"], prog_name="batch-share", env={"SHELL": "/bin/bash"}
    )

    assert result.exit_code == 0, result.output
    assert "_BATCH_SHARE_COMPLETE=complete_bash" in result.stdout
    assert "complete -o default -F _batch_share_completion batch-share" in result.stdout


# --- a real run against the emulator -----------------------------------------------------


def test_a_nightly_settings_file_brakes_a_real_run_and_the_command_line_lifts_it(
    workdir: Path, emulator: ServerHandle
) -> None:
    rows = [[device_id(i), "", f"gone{i}@example.com", "remove"] for i in range(1, 4)]
    rows += [[device_id(20 + i), "", f"new{i}@example.com", "add"] for i in range(1, 6)]
    sheet = write_sheet(
        workdir / "s.csv", rows, header=["device_id", "service_id", "email", "action"]
    )
    (workdir / "batch-share.toml").write_text(
        f"[run]\nmax-removals = 2\nstate-dir = '{(workdir / 'state').as_posix()}'\nquiet = true\n",
        encoding="utf-8",
    )
    env = {
        "R3_ACCESS_KEY_ID": emulator.key_id,
        "R3_SECRET_ACCESS_KEY": emulator.secret,
        "REMOTEIT_API_URL": emulator.url,
    }

    refused = cli("run", str(sheet), "--report", str(workdir / "r1.csv"), env=env)
    lifted = cli(
        "run", str(sheet), "--report", str(workdir / "r2.csv"), "--max-removals", "3", env=env
    )

    assert refused.exit_code == 4, refused.output
    assert "3" in refused.stderr
    assert lifted.exit_code == 0, lifted.output
    assert emulator.state.counters.share_fields == 8
    assert (workdir / "state" / "journal.sqlite3").exists()  # state-dir came from the file
