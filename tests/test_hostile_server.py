"""A server that answers badly: HTML, cut-short, huge or trickled answers, redirects and TLS
that does not verify. Each ends as one clear error, and in a run as a clear line outcome.

Everything goes over real HTTP: the emulator's faults, a listening socket that must stay
untouched, and a local HTTPS server with a certificate made for the test.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import cast

import httpx
import pytest
from helpers import read_report, write_sheet
from typer.testing import CliRunner

from batch_share.cli import app
from batch_share.emulator import ServerHandle, device_id
from batch_share.errors import BadResponseError, RequestTimeoutError, TLSError
from batch_share.models import Action, Mutation, Status
from batch_share.send.auth import Credentials
from batch_share.send.client import MAX_RESPONSE_BYTES, FieldResult, ShareClient
from batch_share.send.executor import ExecConfig, ExecResult, execute

MUTATION = Mutation(
    id="m1",
    device_ids=(device_id(1),),
    emails=("a@example.com",),
    action=Action.ADD,
    scripting=False,
    notify=False,
)


def credentials_of(emulator: ServerHandle) -> Credentials:
    return Credentials(emulator.key_id, base64.b64decode(emulator.secret), "test credentials")


def share_via(url: str, credentials: Credentials, **client: float) -> list[FieldResult]:
    async def go() -> list[FieldResult]:
        async with ShareClient(url, credentials, **client) as share_client:  # type: ignore[arg-type]
            return await share_client.share([MUTATION])

    return asyncio.run(go())


def share(emulator: ServerHandle, **client: float) -> list[FieldResult]:
    return share_via(emulator.url, credentials_of(emulator), **client)


# --- the client: one clear error per kind of bad answer -------------------------------------


def test_an_html_page_with_200_is_a_bad_response(emulator: ServerHandle) -> None:
    emulator.state.faults.html_200 = True

    with pytest.raises(BadResponseError, match="the answer is not JSON: <!DOCTYPE html>") as caught:
        share(emulator)

    assert caught.value.status == 200
    assert emulator.state.access(device_id(1)) == {}


def test_a_truncated_answer_is_a_bad_response(emulator: ServerHandle) -> None:
    emulator.state.faults.truncate_body = True

    with pytest.raises(BadResponseError, match="the answer is not JSON"):
        share(emulator)

    # The proxy cut the answer, not the request: the share happened, unconfirmed.
    assert emulator.state.access(device_id(1)) == {"a@example.com": False}


def test_an_answer_past_the_cap_is_refused_unread(emulator: ServerHandle) -> None:
    emulator.state.faults.huge_body_bytes = MAX_RESPONSE_BYTES + 1024 * 1024

    with pytest.raises(BadResponseError, match="larger than the 16 MiB any answer may have"):
        share(emulator)


def test_a_large_answer_under_the_cap_is_read(emulator: ServerHandle) -> None:
    emulator.state.faults.huge_body_bytes = 2 * 1024 * 1024

    assert share(emulator) == [FieldResult(ok=True)]


def test_the_cap_can_be_lowered(emulator: ServerHandle) -> None:
    emulator.state.faults.huge_body_bytes = 200_000

    with pytest.raises(BadResponseError, match=re.escape("larger than the 0.0625 MiB")):
        share(emulator, max_response_bytes=64 * 1024)


def test_a_trickling_answer_meets_the_total_deadline(emulator: ServerHandle) -> None:
    # One byte every 50 ms: every read is quick, the whole answer would take seconds.
    emulator.state.faults.trickle_seconds = 0.05

    with pytest.raises(RequestTimeoutError, match=r"no complete answer within the 0\.3 s deadline"):
        share(emulator, timeout=5.0, deadline=0.3)


def test_a_redirect_is_refused_and_the_other_host_receives_nothing(
    emulator: ServerHandle,
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as elsewhere:
        elsewhere.settimeout(0)
        target = f"http://127.0.0.1:{elsewhere.getsockname()[1]}/graphql/v1"
        emulator.state.faults.redirect_to = target

        with pytest.raises(BadResponseError) as caught:
            share(emulator)

        with pytest.raises(BlockingIOError):
            elsewhere.accept()  # nobody ever connected
    assert f"refused to follow a redirect to {target}" in str(caught.value)
    assert caught.value.status == 307


def test_a_redirects_user_info_stays_out_of_the_message(emulator: ServerHandle) -> None:
    emulator.state.faults.redirect_to = "https://admin:hunter2@elsewhere.example/graphql"

    with pytest.raises(BadResponseError) as caught:
        share(emulator)

    assert "hunter2" not in str(caught.value)
    assert "elsewhere.example/graphql" in str(caught.value)


# --- TLS ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that no certificate authority vouches for."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl command to make a certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *(openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
            *("-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2"),
            *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


class CountingServer(ThreadingHTTPServer):
    daemon_threads = True
    posts = 0


class CountingHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        cast(CountingServer, self.server).posts += 1
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Keep the test output quiet."""


@pytest.fixture
def https_server(self_signed: tuple[Path, Path]) -> Iterator[CountingServer]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*self_signed)
    server = CountingServer(("127.0.0.1", 0), CountingHandler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def https_url(server: CountingServer) -> str:
    return f"https://127.0.0.1:{server.server_address[1]}/graphql/v1"


def test_an_untrusted_certificate_is_refused_as_a_tls_problem(
    https_server: CountingServer,
) -> None:
    with pytest.raises(TLSError) as caught:
        share_via(https_url(https_server), Credentials("id", b"secret", "test"))

    message = str(caught.value)
    assert "TLS/certificate check failed" in message
    assert "certificate is not trusted (self-signed certificate)" in message
    assert "Traceback" not in message
    assert https_server.posts == 0


def test_https_to_a_plain_http_port_is_a_tls_problem(emulator: ServerHandle) -> None:
    url = emulator.url.replace("http://", "https://")

    with pytest.raises(TLSError, match="TLS/certificate check failed: the TLS handshake failed"):
        share_via(url, credentials_of(emulator))

    assert emulator.state.counters.share_fields == 0


# --- in a run: each is a line outcome, and the run goes on ----------------------------------


def run_two(emulator: ServerHandle, url: str | None = None, **client: float) -> ExecResult:
    mutations = [MUTATION, dataclasses.replace(MUTATION, id="m2")]
    config = ExecConfig(retries=1, backoff_initial=0.0, per_request=1, rate=1000.0)

    async def go() -> ExecResult:
        target = url or emulator.url
        async with ShareClient(target, credentials_of(emulator), **client) as share_client:  # type: ignore[arg-type]
            return await execute(mutations, share_client, config)

    return asyncio.run(go())


def only_outcome(result: ExecResult) -> tuple[Status, str, str, int]:
    outcomes = {(o.status, o.code, o.message, o.attempts) for o in result.outcomes.values()}
    assert len(outcomes) == 1, outcomes
    return outcomes.pop()


def test_a_trickling_server_fails_the_lines_after_the_retries(emulator: ServerHandle) -> None:
    emulator.state.faults.trickle_seconds = 0.05

    result = run_two(emulator, timeout=5.0, deadline=0.2)

    status, code, message, attempts = only_outcome(result)
    assert (status, code, attempts) == (Status.FAILED, "retries-exhausted", 2)
    assert "no complete answer within the 0.2 s deadline" in message
    assert result.aborted is None


def test_a_tls_failure_fails_the_lines_without_retrying(https_server: CountingServer) -> None:
    config = ExecConfig(retries=3, backoff_initial=0.0, per_request=1, rate=1000.0)

    async def go() -> ExecResult:
        credentials = Credentials("id", b"secret", "test")
        async with ShareClient(https_url(https_server), credentials) as share_client:
            return await execute([MUTATION], share_client, config)

    status, code, message, attempts = only_outcome(asyncio.run(go()))
    assert (status, code, attempts) == (Status.FAILED, "tls-refused", 1)
    assert "certificate is not trusted" in message


@pytest.mark.parametrize(
    ("fault", "value", "message"),
    [
        ("html_200", True, "the answer is not JSON: <!DOCTYPE html>"),
        ("truncate_body", True, "the answer is not JSON"),
        ("huge_body_bytes", MAX_RESPONSE_BYTES + 1, "larger than the 16 MiB"),
        ("redirect_to", "http://127.0.0.1:9/elsewhere", "refused to follow a redirect"),
    ],
)
def test_the_cli_reports_each_bad_answer_per_line_and_exits_1(
    emulator: ServerHandle, tmp_path: Path, fault: str, value: object, message: str
) -> None:
    setattr(emulator.state.faults, fault, value)
    rows = [[device_id(i), "", f"u{i}@example.com", "add", "", "", f"T-{i}"] for i in (1, 2)]
    sheet = write_sheet(tmp_path / "sheet.csv", rows)
    report = tmp_path / "report.csv"
    env = {
        "R3_ACCESS_KEY_ID": emulator.key_id,
        "R3_SECRET_ACCESS_KEY": emulator.secret,
        "REMOTEIT_API_URL": emulator.url,
        "R3_PROFILE": None,
        "BATCH_SHARE_STATE_DIR": str(tmp_path / "state"),
    }

    result = CliRunner().invoke(app, ["run", str(sheet), "--report", str(report)], env=env)

    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    lines = read_report(report)
    assert [(line["status"], line["code"]) for line in lines] == [("failed", "bad-response")] * 2
    assert all(message in line["message"] for line in lines)


# --- the emulator command ------------------------------------------------------------------


def test_the_emulator_command_offers_each_hostile_fault() -> None:
    result = CliRunner().invoke(app, ["emulator", "--help"], env={"COLUMNS": "200"})

    assert result.exit_code == 0
    for flag in ("--html-200", "--truncate-body", "--huge-body-bytes", "--trickle-seconds"):
        assert flag in result.output
    assert "--redirect-to" in result.output


@pytest.mark.slow
def test_the_emulator_command_serves_an_html_page_when_told() -> None:
    command = [sys.executable, "-m", "batch_share", "emulator", "--port", "0", "--html-200"]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as process:
        try:
            assert process.stdout is not None
            url = (
                process.stdout.readline().strip().removeprefix("batch-share emulator listening on ")
            )
            with httpx.Client() as client:
                response = client.post(url, content=b"{}")
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/html")
        finally:
            process.terminate()
            process.wait(timeout=10)
