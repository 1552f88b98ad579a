"""The emulator's fast read path answers byte for byte what graphql-core answers.

Every query runs through both executors over the same seeded state and the two answers are
rendered the way the server sends them (`JSONResponse`), so a `true` that became a `1`, or
keys in another order, fail as well as a wrong value does.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from graphql import parse, validate
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from starlette.responses import JSONResponse

from batch_share.emulator import (
    Emulator,
    RequestRecord,
    SeedGrant,
    device_id,
    service_id,
    shared_device_id,
    shared_service_id,
)
from batch_share.emulator.projection import project
from batch_share.emulator.schema import (
    READ_RESOLVERS,
    SCHEMA,
    RequestContext,
    execute_document,
    execute_with_graphql_core,
)
from batch_share.emulator.state import ShareRequest
from batch_share.send.account import ACCOUNT_IDS_QUERY, ACCOUNT_PAGE_QUERY, DEVICES_PAGE_QUERY
from batch_share.send.client import DEVICE_ACCESS_QUERY, WHOAMI_QUERY

BOB, CAROL, DAVE = "bob@example.com", "Carol@Example.com", "dave@example.com"


def seeded(devices: int = 30) -> Emulator:
    emulator = Emulator(devices=devices, services_per_device=3)
    emulator.seed_access(
        [
            SeedGrant(device_id(1), BOB, scripting=True),
            SeedGrant(device_id(1), CAROL),
            SeedGrant(device_id(1), DAVE, service_id=service_id(1, 2)),
            SeedGrant(device_id(2), DAVE, service_id=service_id(2, 1)),
            SeedGrant(device_id(2), DAVE, service_id=service_id(2, 3)),
            SeedGrant(device_id(25), BOB),  # a "Gateway"
            SeedGrant(device_id(3), BOB, service_id=service_id(3, 1)),
            SeedGrant(device_id(3), BOB),  # service share under a whole-device one
        ]
    )
    return emulator


def context_of(emulator: Emulator) -> RequestContext:
    return RequestContext(emulator.shares, emulator.faults, emulator.counters, RequestRecord())


def leave(emulator: Emulator, device: str) -> None:
    """The account leaves a device shared with it, so it no longer sees it."""
    request = ShareRequest(
        device_ids=(device,),
        emails=(emulator.account_email,),
        action="LEAVE",
        scripting=False,
        services=None,
    )
    emulator.shares.share(request, emulator.faults)


def rendered(answer: dict[str, Any]) -> bytes:
    return bytes(JSONResponse(answer).body)


def both(
    emulator: Emulator,
    query: str,
    variables: dict[str, Any] | None = None,
    operation_name: str | None = None,
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """(the fast path's answer or None if it declined, graphql-core's answer)."""
    document = parse(query)
    assert validate(SCHEMA, document) == []
    context = context_of(emulator)
    fast = project(SCHEMA, document, operation_name, variables, READ_RESOLVERS, context)
    reference = execute_with_graphql_core(document, variables, operation_name, context)
    served = execute_document(document, variables, operation_name, context)
    assert rendered(served) == rendered(fast if fast is not None else reference)
    return fast, reference


ALL_IDS = [device_id(i) for i in range(1, 31)] + [shared_device_id(1), shared_device_id(2)]

ANSWERED = [
    pytest.param(WHOAMI_QUERY, {}, None, id="whoami"),
    pytest.param(DEVICE_ACCESS_QUERY, {"ids": ALL_IDS}, None, id="client-device-access"),
    pytest.param(
        DEVICE_ACCESS_QUERY,
        {"ids": [" 80:00:00:00:01:00:00:02 ", "80:00:00:00:01:99:99:99", device_id(1).lower()]},
        None,
        id="client-device-access-unknown-and-untidy",
    ),
    pytest.param(DEVICES_PAGE_QUERY, {"from": 0, "size": 1000}, None, id="client-devices-page"),
    pytest.param(DEVICES_PAGE_QUERY, {"from": 10, "size": 7}, None, id="client-devices-middle"),
    pytest.param(DEVICES_PAGE_QUERY, {"from": 500, "size": 7}, None, id="client-devices-past-end"),
    pytest.param(ACCOUNT_PAGE_QUERY, {"from": 0, "size": 1000}, None, id="export-page"),
    pytest.param(ACCOUNT_IDS_QUERY, {"ids": ALL_IDS[:5]}, None, id="export-ids"),
    pytest.param(ACCOUNT_IDS_QUERY, {"ids": []}, None, id="export-no-ids"),
    pytest.param(
        """query ($ids: [String!]!) { login { email device(id: $ids) {
             id name owner { email } scripting
             access { user { email } scripting }
             services { id name access { user { email } } } } } }""",
        {"ids": ALL_IDS},
        None,
        id="test-suite-read",
    ),
    pytest.param(
        """{ a: login { x: email email y: id
             first: device(id: ["80:00:00:00:01:00:00:01"]) { n: name i: id id }
             second: device(id: ["80:00:00:00:01:00:00:02"]) { access { who: user { e: email } } }
           } }""",
        None,
        None,
        id="aliases",
    ),
    pytest.param(
        """query ($ids: [String!]!) { login {
             device(id: $ids) { id access { user { email } } }
             device(id: $ids) { name access { scripting user { id } } services { id } }
             device(id: $ids) { services { name access { created } } }
           } }""",
        {"ids": [device_id(1), device_id(2)]},
        None,
        id="merged-fields",
    ),
    pytest.param(
        """{ __typename login { __typename
             devices(size: 3) { __typename items { __typename owner { __typename }
               access { __typename user { __typename } } services { __typename } } } } }""",
        None,
        None,
        id="typename",
    ),
    pytest.param(
        """query ($name: String, $owner: Boolean, $size: Int = 4) { login {
             all: devices { total hasMore last items { id } }
             named: devices(name: $name, size: $size) { total last items { id name } }
             mine: devices(owner: $owner, from: 2) { total items { id } }
             theirs: devices(owner: false) { total items { id owner { email id } } }
             picked: devices(id: ["80:00:00:00:01:00:00:03", "nope", "80:00:00:00:02:00:00:01"])
               { total items { id } }
             empty: devices(size: 0) { total hasMore last items { id } }
           } }""",
        {"name": "gATEway", "owner": True},
        None,
        id="devices-arguments",
    ),
    pytest.param(
        """{ login { device(id: ["80:00:00:00:01:00:00:19", "80:00:00:00:02:00:00:01"]) {
             id scripting state online
             ssh: services(name: "SSH") { id name }
             two: services(id: [" 80:00:00:00:12:00:00:19 ", "80:00:00:00:13:00:00:19"]) { id }
             none: services(name: "nothing") { id }
           } } }""",
        None,
        None,
        id="service-filters",
    ),
    pytest.param(
        """query ($ids: [String!]!) { login { service(id: $ids) {
             id name state owner { email } access { created scripting user { id email } }
             device { id name services { id access { user { email } } } }
           } } }""",
        {
            "ids": [
                service_id(1, 2),
                service_id(2, 3).lower(),
                shared_service_id(1, 1),
                "80:00:00:00:19:99:99:99",
                "not an id",
            ]
        },
        None,
        id="services-and-their-device",
    ),
    pytest.param(
        "query A { login { email } } query B { login { id device(id: []) { id } } }",
        None,
        "B",
        id="operation-name",
    ),
]


@pytest.mark.parametrize(("query", "variables", "operation_name"), ANSWERED)
def test_fast_path_answers_what_graphql_core_answers(
    query: str, variables: dict[str, Any] | None, operation_name: str | None
) -> None:
    fast, reference = both(seeded(), query, variables, operation_name)

    assert fast is not None, "the fast path declined a query it is meant to answer"
    assert "errors" not in reference
    assert rendered(fast) == rendered(reference)


def test_the_answers_follow_state_changes() -> None:
    emulator = seeded()
    query, variables = DEVICE_ACCESS_QUERY, {"ids": [*ALL_IDS[:4], shared_device_id(1)]}
    before, _ = both(emulator, query, variables)
    emulator.grant(device_id(4), CAROL, scripting=True)
    leave(emulator, shared_device_id(1))

    after, reference = both(emulator, query, variables)

    assert before is not None
    assert after is not None
    assert rendered(after) == rendered(reference) != rendered(before)
    assert shared_device_id(1) not in json.dumps(after)


DECLINED = [
    pytest.param("{ login { ...who } } fragment who on User { email }", None, id="named-fragment"),
    pytest.param("{ login { ... on User { email } } }", None, id="inline-fragment"),
    pytest.param("{ login { email @skip(if: true) id } }", None, id="skip"),
    pytest.param(
        "query ($no: Boolean!) { login { email @include(if: $no) id } }",
        {"no": False},
        id="include",
    ),
    pytest.param("{ __schema { queryType { name } } }", None, id="introspection-schema"),
    pytest.param('{ __type(name: "Device") { name } }', None, id="introspection-type"),
    pytest.param("{ login { devices(size: 1001) { total } } }", None, id="resolver-error"),
    pytest.param(
        "query ($size: Int) { login { devices(size: $size) { total } } }",
        {"size": "ten"},
        id="bad-variable",
    ),
    pytest.param(
        "query ($ids: [String!]!) { login { device(id: $ids) { id } } }",
        {},
        id="missing-variable",
    ),
    pytest.param(
        'mutation { share(deviceId: "80:00:00:00:01:00:00:01", email: ["bob@example.com"]) }',
        None,
        id="mutation",
    ),
]


@pytest.mark.parametrize(("query", "variables"), DECLINED)
def test_what_the_fast_path_does_not_know_goes_to_graphql_core(
    query: str, variables: dict[str, Any] | None
) -> None:
    emulator = seeded()
    document = parse(query)
    context = context_of(emulator)

    fast = project(SCHEMA, document, None, variables, READ_RESOLVERS, context)
    served = execute_document(document, variables, None, context_of(seeded()))
    reference = execute_with_graphql_core(document, variables, None, context_of(seeded()))

    assert fast is None
    assert rendered(served) == rendered(reference)


def test_an_unknown_operation_name_is_declined() -> None:
    document = parse("query A { login { email } }")

    assert project(SCHEMA, document, "B", None, READ_RESOLVERS, context_of(seeded())) is None


def test_a_field_the_schema_lacks_is_declined() -> None:
    """The server refuses such a document before executing it; the fast path must not
    answer it anyway (a null, say) if it is ever handed one."""
    document = parse("{ login { email nosuchfield } }")

    assert project(SCHEMA, document, None, None, READ_RESOLVERS, context_of(seeded())) is None


# -- random selections over random states ---------------------------------------------------

EMAILS = ("bob@example.com", "Carol@example.com", "dave@example.com", "eve@example.com")
FLEET = 6
SERVICES = 2

_OBJECTS: dict[str, dict[str, str | None]] = {
    "User": {
        "id": None,
        "email": None,
        "device": "Device",
        "devices": "Page",
        "service": "Service",
    },
    "Device": {
        "id": None,
        "name": None,
        "owner": "UserReference",
        "access": "Access",
        "services": "Service",
        "scripting": None,
        "state": None,
        "online": None,
    },
    "Service": {
        "id": None,
        "name": None,
        "owner": "UserReference",
        "access": "Access",
        "device": "Device",
        "state": None,
    },
    "Access": {"created": None, "scripting": None, "user": "UserReference"},
    "UserReference": {"id": None, "email": None},
    "Page": {"items": "Device", "hasMore": None, "last": None, "total": None},
}

_DEVICE_IDS = [device_id(i) for i in range(1, FLEET + 2)] + [
    shared_device_id(1),
    device_id(2).lower(),
]
_SERVICE_IDS = [service_id(i, j) for i in (1, 2, 3) for j in (1, 2, 3)] + [shared_service_id(2, 1)]


class _Query:
    """Collects variable declarations while a selection is drawn."""

    def __init__(self) -> None:
        self.declarations: list[str] = []
        self.variables: dict[str, Any] = {}

    def value(self, draw: st.DrawFn, type_text: str, value: Any) -> str:
        if draw(st.booleans()):
            name = f"v{len(self.variables)}"
            self.declarations.append(f"${name}: {type_text}")
            self.variables[name] = value
            return f"${name}"
        return json.dumps(value)  # JSON strings, lists and booleans read as GraphQL literals


def _arguments(draw: st.DrawFn, query: _Query, parent: str, field: str) -> str:
    def ids(pool: list[str], type_text: str) -> str:
        chosen = draw(st.lists(st.sampled_from(pool), max_size=4))
        return query.value(draw, type_text, chosen)

    given: dict[str, str] = {}
    if (parent, field) == ("User", "device"):
        given["id"] = ids(_DEVICE_IDS, "[String!]!")
    elif (parent, field) == ("User", "service"):
        given["id"] = ids(_SERVICE_IDS, "[String!]!")
    elif (parent, field) == ("User", "devices"):
        if draw(st.booleans()):
            given["from"] = query.value(draw, "Int", draw(st.integers(0, FLEET + 6)))
        if draw(st.booleans()):
            given["size"] = query.value(draw, "Int", draw(st.integers(0, 4)))
        if draw(st.booleans()):
            name = draw(st.sampled_from(["device", "GATEWAY", "Partner", "", "zzz"]))
            given["name"] = query.value(draw, "String", name)
        if draw(st.booleans()):
            given["owner"] = query.value(draw, "Boolean", draw(st.booleans()))
        if draw(st.integers(0, 3)) == 0:
            given["id"] = ids(_DEVICE_IDS, "[String!]")
    elif (parent, field) == ("Device", "services"):
        if draw(st.booleans()):
            given["name"] = query.value(draw, "String", draw(st.sampled_from(["SSH", "h", ""])))
        if draw(st.integers(0, 3)) == 0:
            given["id"] = ids(_SERVICE_IDS, "[String!]")
    if not given:
        return ""
    return "(" + ", ".join(f"{name}: {value}" for name, value in given.items()) + ")"


@st.composite
def _selection(draw: st.DrawFn, query: _Query, type_name: str, depth: int) -> str:
    fields = _OBJECTS[type_name]
    names = [n for n, child in fields.items() if child is None or depth > 0] + ["__typename"]
    chosen = draw(st.lists(st.sampled_from(names), min_size=1, max_size=5))
    parts = []
    for name in chosen:
        alias = draw(st.sampled_from(["", "", "", "a: ", "b: "]))
        child = fields.get(name)
        text = alias + name
        if child is not None:
            text += _arguments(draw, query, type_name, name)
            text += " { " + draw(_selection(query, child, depth - 1)) + " }"
        parts.append(text)
    return " ".join(parts)


@st.composite
def _queries(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    query = _Query()
    login_alias = draw(st.sampled_from(["", "me: "]))
    body = draw(_selection(query, "User", 3))
    root = "__typename " if draw(st.booleans()) else ""
    declared = f"({', '.join(query.declarations)})" if query.declarations else ""
    return f"query{declared} {{ {root}{login_alias}login {{ {body} }} }}", query.variables


_grants = st.lists(
    st.tuples(
        st.integers(1, FLEET),
        st.sampled_from(EMAILS),
        st.booleans(),
        st.none() | st.integers(1, SERVICES),
    ),
    max_size=12,
)


def _emulator_with(grants: list[tuple[int, str, bool, int | None]], leave_one: bool) -> Emulator:
    emulator = Emulator(devices=FLEET, services_per_device=SERVICES)
    emulator.seed_access(
        SeedGrant(device_id(d), email, scripting, None if s is None else service_id(d, s))
        for d, email, scripting, s in grants
    )
    if leave_one:
        leave(emulator, shared_device_id(2))
    return emulator


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(_queries(), _grants, st.booleans())
def test_random_selections_over_random_states_answer_alike(
    query_and_variables: tuple[str, dict[str, Any]],
    grants: list[tuple[int, str, bool, int | None]],
    leave_one: bool,
) -> None:
    query, variables = query_and_variables
    document = parse(query)
    assume(not validate(SCHEMA, document))  # e.g. one alias on two different fields
    emulator = _emulator_with(grants, leave_one)
    context = context_of(emulator)

    fast = project(SCHEMA, document, None, variables, READ_RESOLVERS, context)
    reference = execute_with_graphql_core(document, variables, None, context)

    assert fast is None or rendered(fast) == rendered(reference)
    # It declines only what carries an error (here: none of the drawn queries can).
    assert (fast is None) == ("errors" in reference)
