"""The GraphQL client: pure helpers first, then real signed HTTP against the emulator."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
import re
import socket
import threading
import time
from collections.abc import Iterator
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import cast

import pytest
from graphql import parse

from batch_share.emulator import ACCOUNT_EMAIL, ServerHandle, device_id, service_id
from batch_share.emulator.schema import document_errors
from batch_share.errors import (
    AuthRefusedError,
    BadResponseError,
    InsecureURLError,
    RateLimitedError,
    RequestRejectedError,
    RequestTimeoutError,
    RetryableError,
    ServerError,
    TransportError,
)
from batch_share.models import Action, Mutation, ServiceChange
from batch_share.send.auth import Credentials
from batch_share.send.client import (
    DEVICE_ACCESS_QUERY,
    MAX_RESPONSE_BYTES,
    WHOAMI_QUERY,
    FieldResult,
    GraphQLErrorInfo,
    GraphQLResponse,
    ShareClient,
    check_api_url,
    field_results,
    parse_retry_after,
    share_document,
    share_variables,
)

# --- the URL guard -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://api.remote.it/graphql/v1",
        "https://10.0.0.5:8443/graphql/v1",
        "http://127.0.0.1:8765/graphql/v1",
        "http://127.1.2.3/graphql/v1",
        "http://[::1]:8765/graphql/v1",
        "http://localhost:8765/graphql/v1",
        "http://LOCALHOST/graphql/v1",
    ],
)
def test_https_anywhere_and_http_to_loopback_are_allowed(url: str) -> None:
    check_api_url(url)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://api.remote.it/graphql/v1", "refusing plain http:// to api.remote.it"),
        ("http://10.0.0.5/graphql/v1", "refusing plain http:// to 10.0.0.5"),
        ("http://0.0.0.0:8765/graphql/v1", "refusing plain http:// to 0.0.0.0"),
        ("http://localhost.example.com/", "refusing plain http:// to localhost.example.com"),
        ("http://127.0.0.1.nip.io/", "refusing plain http:// to 127.0.0.1.nip.io"),
        ("ftp://api.remote.it/graphql/v1", "is not an http(s) URL"),
        ("api.remote.it/graphql/v1", "is not an http(s) URL"),
    ],
)
def test_anything_else_is_refused(url: str, reason: str) -> None:
    with pytest.raises(InsecureURLError, match=re.escape(reason)):
        check_api_url(url)


def test_a_refused_url_never_shows_its_password() -> None:
    with pytest.raises(InsecureURLError) as caught:
        check_api_url("ftp://admin:hunter2@example.com/")

    assert "hunter2" not in str(caught.value)


# --- Retry-After ---------------------------------------------------------------------------

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("7", 7.0),
        (" 0 ", 0.0),
        ("1.5", 1.5),
        ("-3", 0.0),
        (formatdate(NOW + 30, usegmt=True), 30.0),
        (formatdate(NOW - 30, usegmt=True), 0.0),
        (formatdate(NOW + 90, localtime=False), 90.0),  # "-0000" zone: no tzinfo
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_is_delta_seconds_or_an_http_date(
    header: str | None, seconds: float | None
) -> None:
    assert parse_retry_after(header, NOW) == seconds


# --- the share document --------------------------------------------------------------------


def test_share_document_has_one_aliased_field_per_mutation_and_is_cached() -> None:
    document = share_document(3)

    assert share_document(3) is document
    assert [line.split(":")[0].strip() for line in document.splitlines()[1:-1]] == [
        "m0",
        "m1",
        "m2",
    ]
    assert "$e2: [String!]!" in document
    assert "services: $sv2" in document


def test_share_document_refuses_zero_fields() -> None:
    with pytest.raises(ValueError, match="at least one"):
        share_document(0)


def test_share_variables_rename_each_mutations_arguments_per_alias() -> None:
    whole = Mutation(
        id="a",
        device_ids=("80:00:00:00:01:00:00:01",),
        emails=("x@example.com",),
        action=Action.ADD,
        scripting=True,
        notify=False,
    )
    services = Mutation(
        id="b",
        device_ids=("80:00:00:00:01:00:00:02", "80:00:00:00:01:00:00:03"),
        emails=("y@example.com", "z@example.com"),
        action=Action.REMOVE,
        scripting=False,
        notify=True,
        services=(ServiceChange("80:00:00:00:11:00:00:02", Action.REMOVE),),
    )

    assert share_variables([whole, services]) == {
        "d0": "80:00:00:00:01:00:00:01",
        "e0": ["x@example.com"],
        "a0": "ADD",
        "sc0": True,
        "n0": False,
        "ds1": ["80:00:00:00:01:00:00:02", "80:00:00:00:01:00:00:03"],
        "e1": ["y@example.com", "z@example.com"],
        "a1": "REMOVE",
        "sc1": False,
        "n1": True,
        "sv1": [{"serviceId": "80:00:00:00:11:00:00:02", "action": "REMOVE"}],
    }


# --- reading a share answer ----------------------------------------------------------------


def test_every_field_true_is_every_result_ok() -> None:
    response = GraphQLResponse(data={"m0": True, "m1": True}, errors=())

    assert field_results(response, 2) == [FieldResult(ok=True), FieldResult(ok=True)]


def test_a_nulled_field_carries_its_own_errors_and_the_others_stay_ok() -> None:
    response = GraphQLResponse(
        data={"m0": True, "m1": None, "m2": True},
        errors=(
            GraphQLErrorInfo("user a@unregistered.example has no remote.it account", ("m1",)),
            GraphQLErrorInfo("device 80:00 not found", ("m1",)),
        ),
    )

    assert field_results(response, 3) == [
        FieldResult(ok=True),
        FieldResult(
            ok=False,
            message="user a@unregistered.example has no remote.it account; device 80:00 not found",
            own_error=True,
        ),
        FieldResult(ok=True),
    ]


def test_null_data_from_a_failed_non_null_field_confirms_nothing() -> None:
    # share is Boolean!: one failure nulls all of `data`, so no sibling is known to be done.
    response = GraphQLResponse(data=None, errors=(GraphQLErrorInfo("internal error", ("m1",)),))

    results = field_results(response, 3)

    assert results[1] == FieldResult(ok=False, message="internal error", own_error=True)
    assert [r.ok for r in results] == [False, False, False]
    assert not results[0].own_error
    assert not results[2].own_error
    assert "not confirmed" in results[0].message
    assert "not confirmed" in results[2].message


def test_an_error_for_no_field_with_null_data_rejects_the_whole_request() -> None:
    response = GraphQLResponse(
        data=None, errors=(GraphQLErrorInfo('Variable "$e0" of required type was not provided.'),)
    )

    with pytest.raises(RequestRejectedError, match=r"\$e0"):
        field_results(response, 1)


def test_a_field_answering_false_is_not_ok() -> None:
    response = GraphQLResponse(data={"m0": False}, errors=())

    assert field_results(response, 1) == [
        FieldResult(ok=False, message="the server did not confirm this share")
    ]


def test_every_document_the_client_sends_is_valid_against_the_schema() -> None:
    documents = [share_document(1), share_document(7), WHOAMI_QUERY, DEVICE_ACCESS_QUERY]

    for document in documents:
        assert document_errors(parse(document)) == []


# --- against the emulator, over real HTTP -----------------------------------------------


def emulator_credentials(emulator: ServerHandle) -> Credentials:
    return Credentials(emulator.key_id, base64.b64decode(emulator.secret), "test credentials")


def share_one(device: str, email: str, **changes: object) -> Mutation:
    mutation = Mutation(
        id=device,
        device_ids=(device,),
        emails=(email,),
        action=Action.ADD,
        scripting=False,
        notify=False,
    )
    return dataclasses.replace(mutation, **changes)  # type: ignore[arg-type]


def run_share(
    emulator: ServerHandle,
    mutations: list[Mutation],
    *,
    credentials: Credentials | None = None,
    timeout: float = 10.0,
) -> list[FieldResult]:
    async def go() -> list[FieldResult]:
        async with ShareClient(
            emulator.url, credentials or emulator_credentials(emulator), timeout=timeout
        ) as client:
            return await client.share(mutations)

    return asyncio.run(go())


def test_a_signed_share_is_applied_and_read_back(emulator: ServerHandle) -> None:
    device = device_id(1)
    mutation = share_one(device, "new.user@example.com", scripting=True)

    async def go() -> tuple[list[FieldResult], list[dict[str, object]], str]:
        async with ShareClient(emulator.url, emulator_credentials(emulator)) as client:
            results = await client.share([mutation])
            return results, await client.device_access([device]), await client.whoami()

    results, devices, account = asyncio.run(go())

    assert results == [FieldResult(ok=True)]
    assert emulator.state.access(device) == {"new.user@example.com": True}
    assert [d["id"] for d in devices] == [device]
    assert devices[0]["access"] == [{"user": {"email": "new.user@example.com"}, "scripting": True}]
    assert account == ACCOUNT_EMAIL
    assert emulator.state.counters.requests == 3


def test_many_mutations_travel_in_one_request_and_fail_one_by_one(
    emulator: ServerHandle,
) -> None:
    emulator.state.faults.failing_devices = {device_id(2)}
    mutations = [
        share_one(device_id(1), "a@example.com"),
        share_one(device_id(2), "b@example.com"),
        share_one(device_id(3), "c@unregistered.example"),
        share_one(
            device_id(4),
            "d@example.com",
            services=(ServiceChange(service_id(4, 1), Action.ADD),),
        ),
    ]

    results = run_share(emulator, mutations)

    assert results == [
        FieldResult(ok=True),
        FieldResult(
            ok=False,
            message=f"could not update sharing for device {device_id(2)}: internal error",
            own_error=True,
        ),
        FieldResult(
            ok=False,
            message="user c@unregistered.example has no remote.it account",
            own_error=True,
        ),
        FieldResult(ok=True),
    ]
    assert emulator.state.counters.requests == 1
    assert emulator.state.counters.share_fields == 4
    assert emulator.state.access(device_id(1)) == {"a@example.com": False}
    assert emulator.state.access(device_id(2)) == {}
    assert emulator.state.access(device_id(4)) == {}  # a service share, not the whole device
    assert "d@example.com" in emulator.state.service_access(service_id(4, 1))


def test_an_empty_share_or_read_sends_nothing(emulator: ServerHandle) -> None:
    async def go() -> tuple[list[FieldResult], list[dict[str, object]]]:
        async with ShareClient(emulator.url, emulator_credentials(emulator)) as client:
            return await client.share([]), await client.device_access([])

    assert asyncio.run(go()) == ([], [])
    assert emulator.state.counters.requests == 0


def test_503_is_a_server_error(emulator: ServerHandle) -> None:
    emulator.state.faults.p503 = 1.0

    with pytest.raises(ServerError) as caught:
        run_share(emulator, [share_one(device_id(1), "a@example.com")])

    assert caught.value.status == 503
    assert "HTTP 503: service temporarily unavailable" in str(caught.value)
    assert isinstance(caught.value, RetryableError)


def test_429_is_rate_limited_with_the_servers_retry_after(emulator: ServerHandle) -> None:
    emulator.state.faults.p429 = 1.0
    emulator.state.faults.retry_after = 7

    with pytest.raises(RateLimitedError) as caught:
        run_share(emulator, [share_one(device_id(1), "a@example.com")])

    assert caught.value.retry_after == 7.0
    assert caught.value.status == 429


def test_a_dropped_connection_is_a_transport_error(emulator: ServerHandle) -> None:
    emulator.state.faults.p_drop = 1.0

    with pytest.raises(TransportError, match=re.escape("POST http://127.0.0.1")):
        run_share(emulator, [share_one(device_id(1), "a@example.com")])

    assert emulator.state.counters.dropped == 1


def test_a_refused_connection_is_a_transport_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port any more.
    credentials = Credentials("id", b"secret", "test")

    async def go() -> str:
        async with ShareClient(f"http://127.0.0.1:{port}/graphql/v1", credentials) as client:
            return await client.whoami()

    with pytest.raises(TransportError):
        asyncio.run(go())


def test_an_answer_slower_than_the_timeout_is_a_timeout(emulator: ServerHandle) -> None:
    emulator.state.faults.latency = 1.0

    with pytest.raises(RequestTimeoutError, match="no answer in time"):
        run_share(emulator, [share_one(device_id(1), "a@example.com")], timeout=0.1)


def test_a_wrong_secret_is_refused_and_named_without_the_secret(
    emulator: ServerHandle,
) -> None:
    wrong = Credentials(emulator.key_id, b"not the emulator's secret", "profile [wrong]")

    with pytest.raises(AuthRefusedError) as caught:
        run_share(emulator, [share_one(device_id(1), "a@example.com")], credentials=wrong)

    message = str(caught.value)
    assert caught.value.status == 401
    assert "signature does not match" in message
    assert f"key {emulator.key_id} from profile [wrong]" in message
    assert "not the emulator's secret" not in message
    assert "Signature keyId" not in message
    assert emulator.state.access(device_id(1)) == {}


def test_a_document_the_server_refuses_whole_is_rejected(emulator: ServerHandle) -> None:
    emulator.state.faults.alias_cap = 2
    mutations = [share_one(device_id(i), "a@example.com") for i in (1, 2, 3)]

    with pytest.raises(RequestRejectedError) as caught:
        run_share(emulator, mutations)

    assert caught.value.status == 400
    assert "query too complex: 3 fields in one document, at most 2" in str(caught.value)
    assert not isinstance(caught.value, RetryableError)


def test_plain_http_to_a_non_loopback_host_is_refused_before_any_io(
    emulator: ServerHandle,
) -> None:
    # 0.0.0.0 would reach this very emulator on Linux, so a request would be counted.
    url = f"http://0.0.0.0:{emulator.port}/graphql/v1"

    with pytest.raises(InsecureURLError):
        ShareClient(url, emulator_credentials(emulator))

    assert emulator.state.counters.requests == 0


def test_the_secret_appears_in_no_log_record_and_no_error(
    emulator: ServerHandle, caplog: pytest.LogCaptureFixture
) -> None:
    credentials = emulator_credentials(emulator)
    secret_forms = [emulator.secret, repr(credentials.secret), credentials.secret.hex()]
    errors: list[str] = []

    with caplog.at_level(logging.DEBUG):
        assert run_share(emulator, [share_one(device_id(1), "a@example.com")]) == [
            FieldResult(ok=True)
        ]
        emulator.state.faults.p503 = 1.0
        with pytest.raises(ServerError) as server_error:
            run_share(emulator, [share_one(device_id(2), "a@example.com")])
        errors.append(str(server_error.value))
        emulator.state.faults.p503 = 0.0
        wrong = Credentials(emulator.key_id, credentials.secret[::-1], "test")
        with pytest.raises(AuthRefusedError) as auth_error:
            run_share(emulator, [share_one(device_id(3), "a@example.com")], credentials=wrong)
        errors.append(str(auth_error.value))

    assert any(record.name.startswith("httpx") for record in caplog.records)
    assert any(record.name.startswith("httpcore") for record in caplog.records)
    logged = caplog.text + "".join(str(record.args) for record in caplog.records)
    for secret in secret_forms:
        assert secret not in logged
        assert all(secret not in error for error in errors)
    assert "Signature keyId" not in logged


# --- answers the emulator never gives, from a scripted server on loopback -------------------


class ScriptedServer(ThreadingHTTPServer):
    """Answers every POST with `answer` (status, headers, body), whatever was asked."""

    daemon_threads = True
    answer: tuple[int, dict[str, str], bytes] = (200, {}, b"")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/graphql/v1"


class ScriptedHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["content-length"]))
        status, headers, body = cast(ScriptedServer, self.server).answer
        self.send_response(status)
        for name, value in {"Content-Length": str(len(body)), **headers}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Keep the test output quiet."""


@pytest.fixture
def scripted() -> Iterator[ScriptedServer]:
    server = ScriptedServer(("127.0.0.1", 0), ScriptedHandler)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def execute_against(server: ScriptedServer) -> GraphQLResponse:
    async def go() -> GraphQLResponse:
        credentials = Credentials("id", b"secret", "test")
        async with ShareClient(server.url, credentials) as client:
            return await client.execute(WHOAMI_QUERY, {})

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("status", "body", "error", "text"),
    [
        (200, b"<html>gateway</html>", BadResponseError, "not JSON: <html>gateway</html>"),
        (200, b"[1, 2]", BadResponseError, "not a GraphQL response"),
        (200, b'{"result": 1}', BadResponseError, "not a GraphQL response"),
        (200, b'{"data": [1]}', BadResponseError, "`data` is not an object"),
        (200, b'{"data": null, "errors": "boom"}', BadResponseError, "`errors` is not a list"),
        (302, b"", BadResponseError, "HTTP 302"),
        (403, b'{"message": "key disabled"}', AuthRefusedError, "HTTP 403: key disabled"),
        (413, b"request entity too large", RequestRejectedError, "HTTP 413: request entity"),
        (502, b"  bad\n  gateway ", ServerError, "HTTP 502: bad gateway"),
    ],
)
def test_each_kind_of_bad_answer_maps_to_its_error(
    scripted: ScriptedServer, status: int, body: bytes, error: type[Exception], text: str
) -> None:
    scripted.answer = (status, {"Content-Type": "application/json"}, body)

    with pytest.raises(error, match=re.escape(text)) as caught:
        execute_against(scripted)

    assert getattr(caught.value, "status", None) == status


def test_a_long_error_body_is_cut_short(scripted: ScriptedServer) -> None:
    scripted.answer = (500, {}, b"x" * 5000)

    with pytest.raises(ServerError) as caught:
        execute_against(scripted)

    assert len(str(caught.value)) < 400


def test_retry_after_as_an_http_date(scripted: ScriptedServer) -> None:
    later = formatdate(time.time() + 3600, usegmt=True)
    scripted.answer = (429, {"Retry-After": later}, b"slow down")

    with pytest.raises(RateLimitedError) as caught:
        execute_against(scripted)

    assert caught.value.retry_after is not None
    assert 3000 < caught.value.retry_after <= 3600


def test_graphql_errors_in_a_200_answer_are_returned(scripted: ScriptedServer) -> None:
    body = b'{"data": {"login": null}, "errors": [{"message": "nope", "path": ["login"]}]}'
    scripted.answer = (200, {}, body)

    assert execute_against(scripted) == GraphQLResponse(
        data={"login": None}, errors=(GraphQLErrorInfo("nope", ("login",)),)
    )


def test_json_nested_past_the_parsers_depth_is_a_bad_response(scripted: ScriptedServer) -> None:
    scripted.answer = (200, {}, b"[" * 200_000)

    with pytest.raises(BadResponseError, match="not JSON"):
        execute_against(scripted)


def test_an_answer_declaring_more_than_the_cap_is_not_read(scripted: ScriptedServer) -> None:
    scripted.answer = (200, {"Content-Length": str(MAX_RESPONSE_BYTES + 1)}, b"{}")

    with pytest.raises(BadResponseError, match="declares 16,777,217 bytes, more than the 16 MiB"):
        execute_against(scripted)
