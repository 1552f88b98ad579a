"""The page's wall, over real HTTP: token, Host, Origin, CSRF, size, headers, escaping."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from batch_share.web.security import cookie_name
from batch_share.web.server import WebServer

from .webtools import SAMPLES, UPLOAD_LIMIT, client, same_origin, upload


def test_without_the_token_every_path_is_refused(web: WebServer) -> None:
    for path in ("/", "/static/app.js", "/sheets/x", "/jobs/x/events", "/?token=wrong"):
        response = httpx.get(web.base + path)
        assert response.status_code == 403, path


def test_the_token_becomes_a_strict_httponly_cookie_that_works_more_than_once(
    web: WebServer,
) -> None:
    first = httpx.get(web.url)
    assert first.status_code == 303
    assert first.headers["location"] == "/"  # the token leaves the address bar
    cookie = first.headers["set-cookie"]
    assert f"{cookie_name(web.config.port)}={web.config.token}" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    with client(web) as session:
        for _ in range(3):
            assert session.get("/").status_code == 200
        assert session.get(web.url).status_code == 200  # the URL keeps working too


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:{port}", "127.0.0.1", "127.0.0.1:1", "0.0.0.0:{port}"]
)
def test_a_foreign_host_header_is_refused_even_with_the_token(web: WebServer, host: str) -> None:
    response = httpx.get(web.url, headers={"host": host.format(port=web.config.port)})
    assert response.status_code == 403


@pytest.mark.parametrize("name", ["localhost", "127.0.0.1", "[::1]"])
def test_loopback_names_with_the_port_are_accepted(web: WebServer, name: str) -> None:
    response = httpx.get(web.url, headers={"host": f"{name}:{web.config.port}"})
    assert response.status_code == 303


def test_upload_needs_the_csrf_token(web: WebServer) -> None:
    with client(web) as session:
        files = {"sheet": ("messy.csv", (SAMPLES / "messy.csv").read_bytes())}
        response = session.post("/upload", files=files, headers=same_origin(web))
        assert response.status_code == 403
        wrong = session.post(
            "/upload", data={"csrf": "guess"}, files=files, headers=same_origin(web)
        )
        assert wrong.status_code == 403
        header = session.post(
            "/upload", files=files, headers={**same_origin(web), "x-csrf-token": web.config.csrf}
        )
        assert header.status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "http://evil.example"},
        {"origin": "null"},
        {"origin": "http://127.0.0.1:1"},
        {"sec-fetch-site": "cross-site"},
    ],
)
def test_a_foreign_origin_is_refused_even_with_the_csrf_token(
    web: WebServer, headers: dict[str, str]
) -> None:
    with client(web) as session:
        files = {"sheet": ("messy.csv", (SAMPLES / "messy.csv").read_bytes())}
        response = session.post(
            "/upload", data={"csrf": web.config.csrf}, files=files, headers=headers
        )
        assert response.status_code == 403


def test_start_and_retry_need_the_csrf_token(web: WebServer) -> None:
    with client(web) as session:
        plan = upload(web, session, SAMPLES / "messy.csv")
        started = session.post(f"{plan}/start", data={"go": "dry-run"}, headers=same_origin(web))
        assert started.status_code == 403
        assert web.state.active is None or web.state.active.done
        assert session.post("/jobs/nope/retry", headers=same_origin(web)).status_code == 404


def test_an_upload_over_the_limit_is_refused_by_its_content_length(web: WebServer) -> None:
    with client(web) as session:
        big = b"device_id,email\n" + b"x" * (UPLOAD_LIMIT + 1)
        response = session.post(
            "/upload",
            data={"csrf": web.config.csrf},
            files={"sheet": ("big.csv", big)},
            headers=same_origin(web),
        )
        assert response.status_code == 413


def test_an_upload_over_the_limit_is_refused_while_streaming(web: WebServer) -> None:
    """No Content-Length (chunked): the bytes are counted as they arrive."""

    def chunks() -> Iterator[bytes]:
        yield b'--b\r\nContent-Disposition: form-data; name="sheet"; filename="a.csv"\r\n\r\n'
        for _ in range(UPLOAD_LIMIT // 65536 + 2):
            yield b"x" * 65536

    with client(web) as session:
        response = session.post(
            "/upload",
            content=chunks(),
            headers={
                **same_origin(web),
                "content-type": "multipart/form-data; boundary=b",
                "x-csrf-token": web.config.csrf,
            },
        )
        assert response.status_code == 413
        assert "content-length" not in response.request.headers


def test_every_response_carries_a_strict_content_security_policy(web: WebServer) -> None:
    with client(web) as session:
        for path in ("/", "/static/app.js", "/jobs/nope"):
            response = session.get(path)
            policy = response.headers["content-security-policy"]
            assert "default-src 'none'" in policy
            assert "script-src 'self'" in policy
            assert "unsafe-inline" not in policy
            assert response.headers["x-frame-options"] == "DENY"
            assert response.headers["referrer-policy"] == "same-origin"


def test_an_html_looking_cell_is_escaped(web: WebServer, tmp_path: Path) -> None:
    sheet = tmp_path / "xss.csv"
    sheet.write_text(
        "device_id,email,note\n80:00:00:00:01:00:00:01,<img src=x onerror=alert(1)>,"
        '"<script>alert(2)</script>"\n',
        encoding="utf-8",
    )
    with client(web) as session:
        page = session.get(upload(web, session, sheet, name="<b>x</b>.csv")).text
    assert "<img src=x" not in page
    assert "<script>alert" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in page


def test_credentials_never_reach_the_page(web: WebServer) -> None:
    secret = web.config.emulator.credentials.secret if web.config.emulator else b""
    with client(web) as session:
        plan = upload(web, session, SAMPLES / "messy.csv")
        pages = [session.get("/").text, session.get(plan).text]
    import base64

    for page in pages:
        assert base64.b64encode(secret).decode() not in page
        assert web.config.token not in page
