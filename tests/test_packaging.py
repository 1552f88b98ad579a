"""The wheel, installed the way an admin would, with runtime dependencies only.

The development venv has every extra and the source tree on sys.path, so it hides what the
wheel forgets: a module left out, a dependency only the dev extra brings, an entry point
that imports the emulator. This builds the real wheel, installs it into a fresh venv and
runs the installed command from outside the source tree.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
INSTALL_LIMIT = 900  # seconds: pip resolves pandas, pyarrow and friends from the local index


def _run(
    args: list[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=INSTALL_LIMIT, check=False
    )


@pytest.mark.slow
def test_the_wheel_installs_and_runs_without_the_extras(tmp_path: Path) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "version"
    ]
    built = _run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp_path / "dist"), str(ROOT)],
        tmp_path,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (tmp_path / "dist").glob("batch_share-*.whl")

    venv = tmp_path / "venv"
    made = _run([sys.executable, "-m", "venv", str(venv)], tmp_path)
    assert made.returncode == 0, made.stderr
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    installed = _run(
        [str(bin_dir / "python"), "-m", "pip", "install", "--quiet", str(wheel)], tmp_path
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr

    # Outside the source tree, with no settings file around and no PYTHONPATH leaking in.
    home = tmp_path / "home"
    home.mkdir()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"PYTHONPATH", "VIRTUAL_ENV"} and not key.startswith(("R3_", "COV_"))
    }
    env |= {"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}
    command = str(bin_dir / "batch-share")

    shown = _run([command, "--version"], home, env)
    assert (shown.returncode, shown.stdout) == (0, f"batch-share {version}\n"), shown.stderr

    plan = _run([command, "plan", str(ROOT / "sample_sheets" / "onboarding.xlsx")], home, env)
    assert plan.returncode in {0, 1}, plan.stderr
    assert "mutations" in plan.stdout

    (home / "batch-share.toml").write_text("[run]\nmax-removals = 20\n", encoding="utf-8")
    config = _run([command, "config"], home, env)
    assert config.returncode == 0, config.stderr
    assert any(
        line.split()[:2] == ["max-removals", "20"] and "batch-share.toml:2" in line
        for line in config.stdout.splitlines()
    ), config.stdout

    emulator = _run([command, "emulator", "--port", "0"], home, env)
    assert emulator.returncode == 2
    assert "pip install 'batch-share[emulator]'" in emulator.stderr

    # The wheel ships the code that runs, not the tests or benches.
    listing = _run([str(bin_dir / "python"), "-m", "pip", "show", "-f", "batch-share"], home, env)
    assert "batch_share/settings.py" in listing.stdout
    assert "tests/" not in listing.stdout
