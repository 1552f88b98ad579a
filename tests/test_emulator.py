"""The emulator over real HTTP: signatures, share semantics, reads, faults and counters."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import time
from email.utils import formatdate
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import parse
from typer.testing import CliRunner

from batch_share.cli import app
from batch_share.emulator import (
    ACCOUNT_EMAIL,
    PARTNER_EMAIL,
    SHARED_DEVICE_COUNT,
    Emulator,
    ServerHandle,
    device_id,
    serve_in_thread,
    service_id,
    shared_device_id,
)
from batch_share.emulator.schema import DocumentCache
from batch_share.send.auth import SIGNED_HEADERS, signature, signing_string

SHARE = """
mutation ($d: String, $ds: [String!], $e: [String!]!, $a: SharingAction!, $s: Boolean!,
          $svc: [ServiceSharingOptions!]) {
  share(deviceId: $d, deviceIds: $ds, email: $e, action: $a, scripting: $s, services: $svc)
}
"""

READ = """
query ($ids: [String!]!) {
  login {
    email
    device(id: $ids) {
      id name owner { email } scripting
      access { user { email } scripting }
      services { id name access { user { email } } }
    }
  }
}
"""

BOB = "bob@example.com"
CAROL = "carol@example.com"


# -- a tiny signing client, independent of the project's own HTTP client -------------------


def signed_headers(
    url: str,
    body: bytes,
    *,
    key_id: str,
    secret: str,
    date: str | None = None,
    names: tuple[str, ...] = SIGNED_HEADERS,
) -> dict[str, str]:
    parsed = httpx.URL(url)
    headers = {
        "host": f"{parsed.host}:{parsed.port}",
        "date": date or formatdate(usegmt=True),
        "content-type": "application/json",
        "content-length": str(len(body)),
    }
    text = signing_string("POST", parsed.raw_path.decode(), headers, names)
    sig = signature(base64.b64decode(secret), text)
    headers["authorization"] = (
        f'Signature keyId="{key_id}",algorithm="hmac-sha256",'
        f'headers="{" ".join(names)}",signature="{sig}"'
    )
    return headers


def body_of(query: str, variables: dict[str, Any] | None = None) -> bytes:
    return json.dumps({"query": query, "variables": variables or {}}).encode()


def post(
    emulator: ServerHandle, query: str, variables: dict[str, Any] | None = None
) -> httpx.Response:
    body = body_of(query, variables)
    headers = signed_headers(emulator.url, body, key_id=emulator.key_id, secret=emulator.secret)
    with httpx.Client() as client:
        return client.post(emulator.url, content=body, headers=headers)


def share_vars(
    device: str | list[str],
    emails: list[str],
    action: str = "ADD",
    *,
    scripting: bool = False,
    services: list[tuple[str, str]] | None = None,
) -> dict[str, Any]:
    variables: dict[str, Any] = {"e": emails, "a": action, "s": scripting}
    variables["ds" if isinstance(device, list) else "d"] = device
    if services is not None:
        variables["svc"] = [{"serviceId": s, "action": a} for s, a in services]
    return variables


def share(emulator: ServerHandle, *args: Any, **kwargs: Any) -> dict[str, Any]:
    response = post(emulator, SHARE, share_vars(*args, **kwargs))
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def error_of(result: dict[str, Any], alias: str = "share") -> str:
    """The message of the one error at `alias`, asserting the field came back null."""
    assert result["data"][alias] is None
    matching = [str(e["message"]) for e in result["errors"] if e["path"] == [alias]]
    assert len(matching) == 1, result
    return matching[0]


def read_devices(emulator: ServerHandle, *ids: str) -> list[dict[str, Any]]:
    response = post(emulator, READ, {"ids": list(ids)})
    assert response.status_code == 200, response.text
    devices: list[dict[str, Any]] = response.json()["data"]["login"]["device"]
    return devices


def access_emails(entity: dict[str, Any]) -> set[str]:
    return {entry["user"]["email"] for entry in entity["access"]}


# -- signatures ----------------------------------------------------------------------------


def test_signed_request_is_answered(emulator: ServerHandle) -> None:
    response = post(emulator, "{ login { email } }")

    assert response.status_code == 200
    assert response.json() == {"data": {"login": {"email": ACCOUNT_EMAIL}}}


def test_signature_without_content_length_is_accepted(emulator: ServerHandle) -> None:
    body = body_of("{ login { email } }")
    names = ("(request-target)", "host", "date")
    headers = signed_headers(
        emulator.url, body, key_id=emulator.key_id, secret=emulator.secret, names=names
    )
    with httpx.Client() as client:
        response = client.post(emulator.url, content=body, headers=headers)

    assert response.status_code == 200


def _send(emulator: ServerHandle, body: bytes, headers: dict[str, str]) -> httpx.Response:
    with httpx.Client() as client:
        return client.post(emulator.url, content=body, headers=headers)


def test_tampered_body_is_refused(emulator: ServerHandle) -> None:
    """The scheme signs content-length, not the body: a changed body changes the length,
    which the sender must declare, which breaks the signature."""
    signed = body_of(SHARE, share_vars(device_id(1), [BOB]))
    sent = body_of(SHARE, share_vars(device_id(2), [BOB, CAROL]))
    headers = signed_headers(emulator.url, signed, key_id=emulator.key_id, secret=emulator.secret)
    headers["content-length"] = str(len(sent))

    response = _send(emulator, sent, headers)

    assert response.status_code == 401
    assert response.json()["message"] == "signature does not match"
    assert emulator.state.access(device_id(2)) == {}
    assert emulator.state.counters.share_fields == 0


@pytest.mark.parametrize(
    ("key_id", "secret", "reason"),
    [
        ("same", base64.b64encode(b"not the secret").decode(), "signature does not match"),
        ("KUNKNOWN", "same", "unknown access key id"),
    ],
    ids=["wrong-secret", "unknown-key-id"],
)
def test_wrong_key_is_refused(
    emulator: ServerHandle, key_id: str, secret: str, reason: str
) -> None:
    body = body_of("{ login { email } }")
    headers = signed_headers(
        emulator.url,
        body,
        key_id=emulator.key_id if key_id == "same" else key_id,
        secret=emulator.secret if secret == "same" else secret,
    )

    response = _send(emulator, body, headers)

    assert response.status_code == 401
    assert response.json()["message"] == reason


@pytest.mark.parametrize("offset", [-310, 310, -3600])
def test_date_more_than_five_minutes_off_is_refused(emulator: ServerHandle, offset: int) -> None:
    body = body_of("{ login { email } }")
    date = formatdate(time.time() + offset, usegmt=True)
    headers = signed_headers(
        emulator.url, body, key_id=emulator.key_id, secret=emulator.secret, date=date
    )

    response = _send(emulator, body, headers)

    assert response.status_code == 401
    assert "5 minutes" in response.json()["message"]


def test_date_within_five_minutes_is_accepted(emulator: ServerHandle) -> None:
    body = body_of("{ login { email } }")
    date = formatdate(time.time() - 240, usegmt=True)
    headers = signed_headers(
        emulator.url, body, key_id=emulator.key_id, secret=emulator.secret, date=date
    )

    assert _send(emulator, body, headers).status_code == 200


@pytest.mark.parametrize(
    ("drop", "names", "reason"),
    [
        ("authorization", SIGNED_HEADERS, "missing Authorization header"),
        ("date", SIGNED_HEADERS, "signed header date is missing from the request"),
        (None, ("(request-target)", "date"), "the signature must cover host"),
        (None, ("host", "date"), "the signature must cover (request-target)"),
    ],
    ids=["no-authorization", "no-date", "host-unsigned", "target-unsigned"],
)
def test_missing_headers_are_refused(
    emulator: ServerHandle, drop: str | None, names: tuple[str, ...], reason: str
) -> None:
    body = body_of("{ login { email } }")
    headers = signed_headers(
        emulator.url, body, key_id=emulator.key_id, secret=emulator.secret, names=names
    )
    if drop is not None:
        del headers[drop]

    response = _send(emulator, body, headers)

    assert response.status_code == 401
    assert response.json()["message"] == reason


def test_authorization_that_is_not_a_signature_is_refused(emulator: ServerHandle) -> None:
    body = body_of("{ login { email } }")
    headers = {"authorization": "Bearer abc", "content-type": "application/json"}

    response = _send(emulator, body, headers)

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Signature")


# -- sharing and reading back --------------------------------------------------------------


def test_share_then_read_shows_access(emulator: ServerHandle) -> None:
    result = share(emulator, device_id(3), [BOB, "Carol@Example.com"], scripting=True)

    assert result == {"data": {"share": True}}
    [device] = read_devices(emulator, device_id(3))
    assert device["id"] == device_id(3)
    assert device["name"] == "device-0003"
    assert device["owner"] == {"email": ACCOUNT_EMAIL}
    assert {(a["user"]["email"], a["scripting"]) for a in device["access"]} == {
        (BOB, True),
        (CAROL, True),
    }
    assert all(access_emails(s) == {BOB, CAROL} for s in device["services"])
    assert emulator.state.access(device_id(3)) == {BOB: True, CAROL: True}


def test_add_is_idempotent_and_updates_scripting(emulator: ServerHandle) -> None:
    share(emulator, device_id(1), [BOB], scripting=True)

    again = share(emulator, device_id(1), [BOB], scripting=False)

    assert again == {"data": {"share": True}}
    assert emulator.state.access(device_id(1)) == {BOB: False}


def test_service_share_touches_only_that_service(emulator: ServerHandle) -> None:
    result = share(emulator, device_id(2), [BOB], services=[(service_id(2, 2), "ADD")])

    assert result == {"data": {"share": True}}
    [device] = read_devices(emulator, device_id(2))
    assert device["access"] == []
    by_id = {s["id"]: access_emails(s) for s in device["services"]}
    assert by_id == {service_id(2, 1): set(), service_id(2, 2): {BOB}, service_id(2, 3): set()}
    assert emulator.state.access(device_id(2)) == {}
    assert emulator.state.service_access(service_id(2, 2)) == {BOB}


def test_per_service_actions_in_one_call(emulator: ServerHandle) -> None:
    share(emulator, device_id(2), [BOB], services=[(service_id(2, 1), "ADD")])

    share(
        emulator,
        device_id(2),
        [BOB],
        services=[(service_id(2, 1), "REMOVE"), (service_id(2, 3), "ADD")],
    )

    assert emulator.state.service_access(service_id(2, 1)) == set()
    assert emulator.state.service_access(service_id(2, 3)) == {BOB}


def test_remove_takes_access_away_and_is_idempotent(emulator: ServerHandle) -> None:
    share(emulator, device_id(4), [BOB, CAROL])
    share(emulator, device_id(4), [BOB], services=[(service_id(4, 1), "ADD")])

    removed = share(emulator, device_id(4), [BOB], "REMOVE")
    removed_again = share(emulator, device_id(4), [BOB], "REMOVE")

    assert removed == removed_again == {"data": {"share": True}}
    assert emulator.state.access(device_id(4)) == {CAROL: False}
    assert emulator.state.service_access(service_id(4, 1)) == {CAROL}


def test_leave_removes_own_access_to_a_shared_device(emulator: ServerHandle) -> None:
    assert read_devices(emulator, shared_device_id(1))[0]["owner"] == {"email": PARTNER_EMAIL}

    result = share(emulator, shared_device_id(1), [ACCOUNT_EMAIL.upper()], "LEAVE")

    assert result == {"data": {"share": True}}
    assert emulator.state.access(shared_device_id(1)) == {}
    assert read_devices(emulator, shared_device_id(1)) == []
    again = share(emulator, shared_device_id(1), [ACCOUNT_EMAIL], "LEAVE")
    assert error_of(again) == f"device {shared_device_id(1)} is not shared with you"


@pytest.mark.parametrize(
    ("device", "email", "message"),
    [
        (device_id(1), ACCOUNT_EMAIL, f"device {device_id(1)} is not shared with you"),
        (shared_device_id(2), BOB, "LEAVE removes your own access: email must be"),
    ],
    ids=["own-device", "someone-elses-email"],
)
def test_leave_errors(emulator: ServerHandle, device: str, email: str, message: str) -> None:
    result = share(emulator, device, [email], "LEAVE")

    assert error_of(result).startswith(message)
    assert emulator.state.access(shared_device_id(2)) == {ACCOUNT_EMAIL: False}


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        (
            share_vars("80:00:00:00:01:99:99:99", [BOB]),
            "device 80:00:00:00:01:99:99:99 not found",
        ),
        (
            share_vars(device_id(1), [BOB], services=[(service_id(2, 1), "ADD")]),
            f"service {service_id(2, 1)} is not a service of device {device_id(1)}",
        ),
        (
            share_vars(device_id(1), [BOB], services=[("80:00:00:00:11:99:99:99", "ADD")]),
            "service 80:00:00:00:11:99:99:99 not found",
        ),
        (share_vars(device_id(1), ["not-an-email"]), "'not-an-email' is not a valid email address"),
        (
            share_vars(device_id(1), [BOB, "dan@unregistered.example"]),
            "user dan@unregistered.example has no remote.it account",
        ),
        (
            share_vars(shared_device_id(1), [BOB]),
            f"you do not own device {shared_device_id(1)}; only its owner can change its sharing",
        ),
        (share_vars(device_id(1), [ACCOUNT_EMAIL]), "you cannot share a device with yourself"),
    ],
    ids=[
        "unknown-device",
        "foreign-service",
        "unknown-service",
        "invalid-email",
        "unregistered",
        "not-owner",
        "self",
    ],
)
def test_refused_share_is_a_graphql_error_with_path(
    emulator: ServerHandle, variables: dict[str, Any], message: str
) -> None:
    response = post(emulator, SHARE, variables)

    assert response.status_code == 200
    assert error_of(response.json()) == message
    assert emulator.state.access(device_id(1)) == {}
    assert emulator.state.service_access(service_id(1, 1)) == set()


def test_configured_unregistered_email_fails_the_whole_field(emulator: ServerHandle) -> None:
    emulator.state.faults.unregistered_emails.add("Erin@Example.com")

    result = share(emulator, device_id(1), [BOB, "erin@example.com"])

    assert error_of(result) == "user erin@example.com has no remote.it account"
    assert emulator.state.access(device_id(1)) == {}


def test_aliases_fail_alone_and_the_others_are_applied(emulator: ServerHandle) -> None:
    query = """
    mutation ($e: [String!]!) {
      a: share(deviceId: "80:00:00:00:01:00:00:01", email: $e)
      b: share(deviceId: "80:00:00:00:01:99:99:99", email: $e)
      c: share(deviceId: "80:00:00:00:01:00:00:03", email: $e, scripting: true)
    }
    """

    response = post(emulator, query, {"e": [BOB]})

    assert response.status_code == 200
    result = response.json()
    assert result["data"] == {"a": True, "b": None, "c": True}
    assert [e["path"] for e in result["errors"]] == [["b"]]
    assert emulator.state.access(device_id(1)) == {BOB: False}
    assert emulator.state.access(device_id(3)) == {BOB: True}
    assert [c.alias for c in emulator.state.counters.share_calls] == ["a", "b", "c"]


def test_device_ids_apply_partially_and_name_the_failed_device(
    emulator: ServerHandle,
) -> None:
    unknown = "80:00:00:00:01:99:99:99"

    result = share(emulator, [device_id(1), unknown, device_id(2)], [BOB])

    assert error_of(result) == f"device {unknown} not found"
    assert emulator.state.access(device_id(1)) == {BOB: False}
    assert emulator.state.access(device_id(2)) == {BOB: False}


def test_device_id_and_device_ids_together_are_refused(emulator: ServerHandle) -> None:
    variables = share_vars(device_id(1), [BOB]) | {"ds": [device_id(2)]}

    result = post(emulator, SHARE, variables).json()

    assert error_of(result) == "give deviceId or deviceIds, not both"


def test_devices_pages_through_the_visible_fleet(emulator: ServerHandle) -> None:
    query = """
    query ($from: Int, $size: Int, $name: String) {
      login { devices(from: $from, size: $size, name: $name) {
        items { id name services { id name } } hasMore total } }
    }
    """

    first = post(emulator, query, {"from": 0, "size": 20}).json()["data"]["login"]["devices"]
    last = post(emulator, query, {"from": 40, "size": 20}).json()["data"]["login"]["devices"]
    named = post(emulator, query, {"name": "PARTNER"}).json()["data"]["login"]["devices"]

    total = len(emulator.state.fleet.devices)
    assert (first["total"], first["hasMore"], len(first["items"])) == (total, True, 20)
    assert first["items"][0]["name"] == "Build Server"  # sorted by name: capitals first
    assert first["items"][0]["id"] == device_id(5)
    assert [s["name"] for s in first["items"][0]["services"]] == ["ssh", "http", "vnc"]
    assert (last["hasMore"], len(last["items"])) == (False, total - 40)
    assert [d["id"] for d in named["items"]] == [
        shared_device_id(i) for i in range(1, SHARED_DEVICE_COUNT + 1)
    ]


def test_page_size_beyond_the_limit_is_an_error(emulator: ServerHandle) -> None:
    query = "{ login { devices(size: 1001) { total } } }"

    result = post(emulator, query).json()

    assert result["data"] == {"login": None}
    assert result["errors"][0]["path"] == ["login", "devices"]


# -- request-level refusals ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "the body must be JSON"),
        (b'{"variables": {}}', "the body must be a JSON object with a 'query' string"),
        (body_of("mutation { share("), "Syntax Error"),
        (body_of("{ login { nosuchfield } }"), "Cannot query field 'nosuchfield'"),
    ],
    ids=["not-json", "no-query", "syntax", "invalid"],
)
def test_bad_documents_are_http_400(emulator: ServerHandle, body: bytes, message: str) -> None:
    headers = signed_headers(emulator.url, body, key_id=emulator.key_id, secret=emulator.secret)

    response = _send(emulator, body, headers)

    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["message"].startswith(message)
    assert "path" not in error


# -- faults --------------------------------------------------------------------------------


def test_p503_answers_service_unavailable(emulator: ServerHandle) -> None:
    emulator.state.faults.p503 = 1.0

    response = post(emulator, SHARE, share_vars(device_id(1), [BOB]))

    assert response.status_code == 503
    assert emulator.state.access(device_id(1)) == {}


def test_p429_answers_too_many_requests_with_retry_after(emulator: ServerHandle) -> None:
    emulator.state.faults.p429 = 1.0
    emulator.state.faults.retry_after = 0.25

    response = post(emulator, SHARE, share_vars(device_id(1), [BOB]))

    assert response.status_code == 429
    assert response.headers["retry-after"] == "0.25"
    assert emulator.state.counters.share_fields == 0


def test_dropped_connection_is_a_transport_error_and_applies_nothing(
    emulator: ServerHandle,
) -> None:
    emulator.state.faults.p_drop = 1.0

    with pytest.raises(httpx.TransportError):
        post(emulator, SHARE, share_vars(device_id(1), [BOB]))

    assert emulator.state.access(device_id(1)) == {}
    assert emulator.state.counters.dropped == 1
    assert emulator.state.counters.status_counts == {}


def test_apply_then_drop_keeps_the_effect(emulator: ServerHandle) -> None:
    emulator.state.faults.p_apply_then_drop = 1.0

    with pytest.raises(httpx.TransportError):
        post(emulator, SHARE, share_vars(device_id(1), [BOB]))

    assert emulator.state.access(device_id(1)) == {BOB: False}
    [record] = emulator.state.counters.log
    assert (record.dropped, record.share_fields, record.status) == (True, 1, None)


def test_latency_delays_the_answer(emulator: ServerHandle) -> None:
    emulator.state.faults.latency = 0.5
    body = body_of("{ login { email } }")
    headers = signed_headers(emulator.url, body, key_id=emulator.key_id, secret=emulator.secret)

    with httpx.Client(timeout=0.05) as client, pytest.raises(httpx.ReadTimeout):
        client.post(emulator.url, content=body, headers=headers)


def test_rate_limit_answers_429_with_whole_second_retry_after(
    emulator: ServerHandle,
) -> None:
    emulator.state.faults.rate_limit = 1.0

    statuses = [post(emulator, "{ login { email } }") for _ in range(4)]

    assert statuses[0].status_code == 200
    limited = [r for r in statuses if r.status_code == 429]
    assert limited
    assert all(int(r.headers["retry-after"]) >= 1 for r in limited)


def test_failing_device_always_errors(emulator: ServerHandle) -> None:
    emulator.state.faults.failing_devices.add(device_id(2).lower())

    first = share(emulator, device_id(2), [BOB])
    second = share(emulator, device_id(2), [BOB])
    other = share(emulator, device_id(3), [BOB])

    expected = f"could not update sharing for device {device_id(2)}: internal error"
    assert error_of(first) == error_of(second) == expected
    assert other == {"data": {"share": True}}
    assert emulator.state.access(device_id(2)) == {}


def test_silently_dropped_device_answers_true_but_stores_nothing(
    emulator: ServerHandle,
) -> None:
    emulator.state.faults.silent_drop_devices.add(device_id(5))

    result = share(emulator, device_id(5), [BOB])

    assert result == {"data": {"share": True}}
    assert emulator.state.access(device_id(5)) == {}


def test_alias_cap_refuses_the_whole_document(emulator: ServerHandle) -> None:
    emulator.state.faults.alias_cap = 2
    fields = " ".join(
        f'a{i}: share(deviceId: "{device_id(i)}", email: ["{BOB}"])' for i in range(1, 4)
    )

    response = post(emulator, f"mutation {{ {fields} }}")

    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["message"].startswith("query too complex")
    assert "path" not in error
    assert emulator.state.counters.share_fields == 0
    assert emulator.state.access(device_id(1)) == {}


# -- the document cache --------------------------------------------------------------------


def test_a_repeated_document_is_cached_and_runs_with_each_requests_variables(
    emulator: ServerHandle,
) -> None:
    unknown = "80:00:00:00:01:99:99:99"

    first = post(emulator, SHARE, share_vars(unknown, [BOB]))
    second = post(emulator, SHARE, share_vars(unknown, [BOB]))
    third = post(emulator, SHARE, share_vars(device_id(1), [CAROL]))

    assert SHARE in emulator.state.documents
    # The error of a cached document keeps its path and source locations.
    assert first.status_code == second.status_code == 200
    assert second.json() == first.json()
    assert error_of(first.json()) == f"device {unknown} not found"
    assert first.json()["errors"][0]["locations"]
    assert third.json() == {"data": {"share": True}}
    assert emulator.state.access(device_id(1)) == {CAROL: False}
    assert [c.device_ids for c in emulator.state.counters.share_calls] == [
        (unknown,),
        (unknown,),
        (device_id(1),),
    ]


def test_an_invalid_document_is_refused_alike_every_time_and_never_cached(
    emulator: ServerHandle,
) -> None:
    query = "{ login { email nosuchfield } }"

    answers = [post(emulator, query) for _ in range(2)]

    assert [a.status_code for a in answers] == [400, 400]
    assert answers[0].json() == answers[1].json()
    assert answers[0].json()["errors"][0]["message"].startswith("Cannot query field")
    assert query not in emulator.state.documents


def test_a_cached_document_still_has_its_variables_checked(emulator: ServerHandle) -> None:
    assert post(emulator, READ, {"ids": [device_id(1)]}).status_code == 200

    response = post(emulator, READ, {"ids": [5]})

    assert READ in emulator.state.documents
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["message"].startswith("Variable '$ids' has invalid value")


def test_alias_cap_applies_to_a_cached_document(emulator: ServerHandle) -> None:
    query = """
    mutation ($e: [String!]!) {
      a: share(deviceId: "80:00:00:00:01:00:00:01", email: $e)
      b: share(deviceId: "80:00:00:00:01:00:00:02", email: $e)
      c: share(deviceId: "80:00:00:00:01:00:00:03", email: $e)
    }
    """
    assert post(emulator, query, {"e": [BOB]}).status_code == 200
    emulator.state.faults.alias_cap = 2

    response = post(emulator, query, {"e": [CAROL]})

    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["message"] == "query too complex: 3 fields in one document, at most 2"
    assert emulator.state.counters.share_fields_per_request == [3, 0]
    assert emulator.state.access(device_id(1)) == {BOB: False}


def test_document_cache_drops_the_least_recently_used() -> None:
    cache = DocumentCache(max_entries=2)
    documents = {text: parse(text) for text in ("{ a }", "{ b }", "{ c }")}
    cache.add("{ a }", documents["{ a }"])
    cache.add("{ b }", documents["{ b }"])

    assert cache.get("{ a }") is documents["{ a }"]  # now the most recently used
    cache.add("{ c }", documents["{ c }"])

    assert len(cache) == 2
    assert "{ a }" in cache
    assert "{ b }" not in cache
    assert cache.get("{ b }") is None
    assert cache.get("{ c }") is documents["{ c }"]


def test_document_cache_is_bounded_in_characters_too() -> None:
    cache = DocumentCache(max_entries=10, max_characters=13)
    short, other, too_long = "{ a }", "{ bb }", "{ " + "x" * 20 + " }"
    cache.add(short, parse(short))
    cache.add(other, parse(other))
    cache.add(too_long, parse(too_long))

    assert too_long not in cache
    assert len(cache) == 2
    cache.add("{ ccc }", parse("{ ccc }"))  # 7 more characters: the oldest must go

    assert short not in cache
    assert other in cache
    assert "{ ccc }" in cache


# -- counters and lifecycle ----------------------------------------------------------------


def test_counters_count_requests_share_fields_and_statuses(emulator: ServerHandle) -> None:
    query = """
    mutation ($e: [String!]!) {
      a: share(deviceId: "80:00:00:00:01:00:00:01", email: $e)
      b: share(deviceId: "80:00:00:00:01:00:00:02", email: $e, action: REMOVE)
    }
    """
    post(emulator, query, {"e": [BOB]})
    post(emulator, "{ login { email } }")
    with httpx.Client() as client:
        client.post(emulator.url, json={"query": "{ login { email } }"})

    counters = emulator.state.counters
    assert counters.requests == 3
    assert counters.share_fields == 2
    assert counters.share_fields_per_request == [2, 0, 0]
    assert counters.status_counts == {200: 2, 401: 1}
    assert counters.in_flight == 0
    assert counters.peak_concurrency == 1
    calls = counters.log[0].share_calls
    assert [(c.alias, c.device_ids, c.emails, c.action) for c in calls] == [
        ("a", (device_id(1),), (BOB,), "ADD"),
        ("b", (device_id(2),), (BOB,), "REMOVE"),
    ]


def test_peak_concurrency_counts_overlapping_requests(emulator: ServerHandle) -> None:
    emulator.state.faults.latency = 0.5
    body = body_of("{ login { email } }")

    async def four_at_once() -> list[int]:
        async with httpx.AsyncClient() as client:

            async def one() -> int:
                headers = signed_headers(
                    emulator.url, body, key_id=emulator.key_id, secret=emulator.secret
                )
                response = await client.post(emulator.url, content=body, headers=headers)
                return response.status_code

            return await asyncio.gather(*(one() for _ in range(4)))

    statuses = asyncio.run(four_at_once())

    assert statuses == [200] * 4
    assert emulator.state.counters.peak_concurrency == 4
    assert emulator.state.counters.in_flight == 0


def test_reset_restores_the_seed(emulator: ServerHandle) -> None:
    share(emulator, device_id(1), [BOB])
    share(emulator, shared_device_id(1), [ACCOUNT_EMAIL], "LEAVE")
    emulator.state.faults.p503 = 1.0

    emulator.state.reset()

    assert emulator.state.counters.in_flight == 0
    assert emulator.state.access(device_id(1)) == {}
    assert emulator.state.access(shared_device_id(1)) == {ACCOUNT_EMAIL: False}
    assert emulator.state.faults.p503 == 0.0
    assert emulator.state.counters.requests == 0
    assert post(emulator, "{ login { email } }").status_code == 200


def test_reset_waits_for_requests_a_client_gave_up_on(emulator: ServerHandle) -> None:
    emulator.state.faults.latency = 0.3
    body = body_of(SHARE, share_vars(device_id(1), [BOB]))
    headers = signed_headers(emulator.url, body, key_id=emulator.key_id, secret=emulator.secret)
    with httpx.Client(timeout=0.05) as client, pytest.raises(httpx.ReadTimeout):
        client.post(emulator.url, content=body, headers=headers)

    emulator.state.reset()

    counters = emulator.state.counters
    assert (counters.requests, counters.share_fields, counters.status_counts) == (0, 0, {})
    assert emulator.state.access(device_id(1)) == {}


def test_fleet_ids_follow_the_documented_pattern() -> None:
    assert device_id(1) == "80:00:00:00:01:00:00:01"
    assert device_id(0x12345) == "80:00:00:00:01:01:23:45"
    assert service_id(258, 3) == "80:00:00:00:13:00:01:02"
    assert shared_device_id(5) == "80:00:00:00:02:00:00:05"


def test_a_given_key_pair_is_used_and_a_bad_secret_refused() -> None:
    secret = base64.b64encode(b"k" * 32).decode()
    emulator = Emulator(devices=1, key_id="KGIVEN", secret=secret)

    assert (emulator.key_id, emulator.secret) == ("KGIVEN", secret)
    assert secret not in repr(emulator)
    with pytest.raises(ValueError, match="base64"):
        Emulator(devices=1, secret="not base64!")


def test_serve_in_thread_gives_each_server_its_own_port() -> None:
    with (
        serve_in_thread(Emulator(devices=1)) as first,
        serve_in_thread(Emulator(devices=1)) as second,
    ):
        assert first.port != second.port
        assert first.url == f"http://127.0.0.1:{first.port}/graphql/v1"
        with httpx.Client() as client:
            assert client.post(first.url).status_code == 401


@pytest.mark.slow
def test_serve_prints_url_and_a_working_key_pair() -> None:
    code = "from batch_share.emulator import serve; serve(0, devices=3)"
    with subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as process:
        try:
            assert process.stdout is not None
            lines = [process.stdout.readline().rstrip("\n") for _ in range(3)]
            prefix = "batch-share emulator listening on "
            assert lines[0].startswith(prefix)
            assert lines[1].startswith("R3_ACCESS_KEY_ID=")
            assert lines[2].startswith("R3_SECRET_ACCESS_KEY=")
            url = lines[0].removeprefix(prefix)
            key_id = lines[1].partition("=")[2]
            secret = lines[2].partition("=")[2]
            body = body_of("{ login { email } }")
            headers = signed_headers(url, body, key_id=key_id, secret=secret)
            with httpx.Client() as client:
                response = client.post(url, content=body, headers=headers)
            assert response.json() == {"data": {"login": {"email": ACCOUNT_EMAIL}}}
        finally:
            process.terminate()
            process.wait(timeout=10)


def test_the_emulator_command_refuses_a_seed_file_it_cannot_use(tmp_path: Path) -> None:
    seed = tmp_path / "seed.csv"
    seed.write_text("device_id,email\n,ann@example.com\n", encoding="utf-8")
    unknown = tmp_path / "unknown.csv"
    unknown.write_text("device_id,email\n80:00:00:00:09:00:00:01,ann@example.com\n", "utf-8")

    blank = CliRunner().invoke(app, ["emulator", "--port", "0", "--seed-access", str(seed)])
    foreign = CliRunner().invoke(app, ["emulator", "--port", "0", "--seed-access", str(unknown)])

    assert blank.exit_code == 2
    assert "seed.csv, row 2: device_id and email are required" in blank.output
    assert foreign.exit_code == 2
    assert "unknown device 80:00:00:00:09:00:00:01" in foreign.output
