"""Helpers for talking to the page over plain HTTP, as a browser would."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

import httpx

from batch_share.web.server import WebServer

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "sample_sheets"
SHOTS = ROOT / ".screenshots"  # git-ignored: every screen of a test run
UPLOAD_LIMIT = 2 * 1024 * 1024


@contextlib.contextmanager
def client(web: WebServer) -> Iterator[httpx.Client]:
    """A client that has opened the token URL, so it holds the cookie."""
    with httpx.Client(base_url=web.base, follow_redirects=True, timeout=30) as session:
        session.get(web.url).raise_for_status()
        yield session


def same_origin(web: WebServer) -> dict[str, str]:
    return {"origin": web.base}


def upload(web: WebServer, session: httpx.Client, path: Path, name: str | None = None) -> str:
    """Upload a sheet; returns the plan page's path."""
    response = session.post(
        "/upload",
        data={"csrf": web.config.csrf},
        files={"sheet": (name or path.name, path.read_bytes())},
        headers=same_origin(web),
    )
    assert response.status_code == 200, response.text
    return response.url.path


def job_path(response: httpx.Response) -> str:
    assert re.fullmatch(r"/jobs/[0-9a-f]+", response.url.path), response.text
    return response.url.path
