"""The GraphQL side: the remote.it schema subset, its resolvers, and document execution.

The SDL is embedded (not read from disk) so the package is self-contained. It is the real
subset with one deliberate change, see `share` below.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeAlias
from uuid import NAMESPACE_DNS, uuid5

from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLSchema,
    build_schema,
    execute_sync,
    get_operation_ast,
    validate,
)

from batch_share.emulator.counters import Counters, RequestRecord, ShareCall
from batch_share.emulator.faults import Faults
from batch_share.emulator.fleet import Device, Service
from batch_share.emulator.projection import ReadResolver, project
from batch_share.emulator.state import Grant, ShareError, ShareRequest, ShareState

MAX_PAGE_SIZE = 1000
DOCUMENT_CACHE_ENTRIES = 256
DOCUMENT_CACHE_CHARACTERS = 1_000_000

# `share` returns `Boolean!` on the real API, yet a failed share nulls only its own alias
# and the fields after it still run. A spec-strict executor given `Boolean!` would null the
# whole `data` and stop the serial mutation at the first error, so the executable schema
# declares it nullable to behave like the real server.
SDL = """
type Query {
  login: User
}

type Mutation {
  share(action: SharingAction! = ADD, scripting: Boolean! = false, notify: Boolean! = true,
        services: [ServiceSharingOptions!], email: [String!]!, deviceIds: [String!],
        deviceId: String): Boolean
}

type User {
  id: ID!
  email: String
  device(id: [String!]!): [Device!]
  devices(sort: String! = "name", after: ID, from: Int = 0, size: Int = 100,
          application: [Int!], hardwareId: String, id: [String!], name: String,
          owner: Boolean, platform: [Int!], state: String): PaginatedDeviceResponse!
  service(id: [String!]!): [Service!]
}

type Device {
  id: ID!
  name: String
  owner: UserReference
  access: [Access!]!
  services(sort: String! = "name", application: [Int!], hardwareId: String, id: [String!],
           name: String, owner: Boolean, platform: [Int!], state: String): [Service!]!
  scripting: Boolean!
  state: String!
  online: Boolean!
}

type Service {
  id: ID!
  name: String
  owner: UserReference
  access: [Access!]!
  device: Device
  state: String!
}

type Access {
  created: DateTime
  scripting: Boolean
  user: UserReference!
}

type UserReference {
  id: ID!
  email: String
}

type PaginatedDeviceResponse {
  items: [Device!]!
  hasMore: Boolean!
  last: String
  total: Int!
}

enum SharingAction {
  ADD
  REMOVE
  LEAVE
}

input ServiceSharingOptions {
  action: SharingAction! = ADD
  serviceId: String!
}

scalar DateTime
"""


@dataclass(frozen=True, slots=True)
class RequestContext:
    """What resolvers need: the emulator's state and the request they are counted under."""

    state: ShareState
    faults: Faults
    counters: Counters
    record: RequestRecord


Info: TypeAlias = "GraphQLResolveInfo[RequestContext]"


# -- views: plain dicts shaped like the schema's types -------------------------------------
# Both executors read these (graphql-core through its default resolver, `projection` by
# key), so they must hold plain data: no callables, lists for lists.


@lru_cache(maxsize=65_536)
def _user_id(email: str) -> str:
    """uuid5 hashes with SHA-1 and builds a UUID object; per access entry that was a fifth
    of a big read's time, for a value that never changes."""
    return str(uuid5(NAMESPACE_DNS, email))


def _user_ref(email: str) -> dict[str, str]:
    return {"id": _user_id(email), "email": email}


def _access_list(grants: Mapping[str, Grant]) -> list[dict[str, Any]]:
    return [
        {"created": grant.created, "scripting": grant.scripting, "user": _user_ref(email)}
        for email, grant in sorted(grants.items())
    ]


def _service_view(service: Service, owner: str, grants: Mapping[str, Grant]) -> dict[str, Any]:
    return {
        "id": service.id,
        "name": service.name,
        "owner": _user_ref(owner),
        "access": _access_list(grants),
        "deviceId": service.device_id,
        "state": "active",
    }


def _device_view(state: ShareState, device: Device) -> dict[str, Any]:
    grants, service_grants = state.device_access(device)
    own_grant = grants.get(state.account)
    return {
        "id": device.id,
        "name": device.name,
        "owner": _user_ref(device.owner),
        "access": _access_list(grants),
        "services": [
            _service_view(service, device.owner, reach)
            for service, reach in zip(device.services, service_grants, strict=True)
        ],
        "scripting": device.owner == state.account or bool(own_grant and own_grant.scripting),
        "state": "active",
        "online": True,
    }


def _visible_devices(state: ShareState, ids: Sequence[str]) -> list[Device]:
    """The requested devices the account can see, in request order; others are left out."""
    found = (state.find_device(device_id) for device_id in ids)
    return [device for device in found if device is not None and state.can_see(device)]


# -- read resolvers ------------------------------------------------------------------------
# One function per field that is not a plain key of its parent's view, called by graphql-core
# (through `_adapt`) and by `projection` alike, so both executors see the same values.


def _resolve_login(_root: object, context: RequestContext, _args: dict[str, Any]) -> Any:
    account = context.state.account
    return {"id": _user_id(account), "email": account}


def _resolve_device(_user: object, context: RequestContext, args: dict[str, Any]) -> Any:
    state = context.state
    return [_device_view(state, device) for device in _visible_devices(state, args["id"])]


def _resolve_service(_user: object, context: RequestContext, args: dict[str, Any]) -> Any:
    state = context.state
    views = []
    for given in args["id"]:
        service = state.fleet.services.get(given.strip().upper())
        device = None if service is None else state.find_device(service.device_id)
        if service is not None and device is not None and state.can_see(device):
            _, reach = state.device_access(device)
            views.append(
                _service_view(service, device.owner, reach[device.services.index(service)])
            )
    return views


def _resolve_devices(_user: object, context: RequestContext, args: dict[str, Any]) -> Any:
    """Pages through visible devices sorted by name; filters: id, name (substring, any case),
    owner (true = only the account's own). Other arguments are accepted and ignored."""
    start, size = args.get("from") or 0, args.get("size")
    size = 100 if size is None else size
    if not 0 <= size <= MAX_PAGE_SIZE or start < 0:
        raise GraphQLError(f"size must be between 0 and {MAX_PAGE_SIZE} and from at least 0")
    state = context.state
    name = args.get("name") or ""
    if args.get("id") is not None:
        devices = sorted(_visible_devices(state, args["id"]), key=lambda d: (d.name, d.id))
        devices = [d for d in devices if name.casefold() in d.name.casefold()]
    else:
        devices = state.listing(name)
    if args.get("owner") is not None:
        devices = [d for d in devices if (d.owner == state.account) == args["owner"]]
    page = devices[start : start + size]
    return {
        "items": [_device_view(state, device) for device in page],
        "hasMore": start + size < len(devices),
        "last": page[-1].id if page else None,
        "total": len(devices),
    }


def _resolve_device_services(
    device: Mapping[str, Any], _context: RequestContext, args: dict[str, Any]
) -> Any:
    services: list[dict[str, Any]] = device["services"]
    if args.get("id") is not None:
        wanted = {service_id.strip().upper() for service_id in args["id"]}
        services = [s for s in services if s["id"] in wanted]
    if args.get("name"):
        services = [s for s in services if args["name"].casefold() in s["name"].casefold()]
    return services


def _resolve_service_device(
    service: Mapping[str, Any], context: RequestContext, _args: dict[str, Any]
) -> Any:
    state = context.state
    device = state.find_device(service["deviceId"])
    return None if device is None else _device_view(state, device)


READ_RESOLVERS: dict[tuple[str, str], ReadResolver[RequestContext]] = {
    ("Query", "login"): _resolve_login,
    ("User", "device"): _resolve_device,
    ("User", "devices"): _resolve_devices,
    ("User", "service"): _resolve_service,
    ("Device", "services"): _resolve_device_services,
    ("Service", "device"): _resolve_service_device,
}


def _adapt(resolver: ReadResolver[RequestContext]) -> Callable[..., Any]:
    """graphql-core's calling convention (info, keyword arguments) over a read resolver."""

    def resolve(source: Any, info: Info, **args: Any) -> Any:
        return resolver(source, info.context, args)

    return resolve


# -- the share mutation --------------------------------------------------------------------


def _named_devices(args: Mapping[str, Any]) -> tuple[str, ...]:
    """Every device the call names, whichever argument carries it."""
    named = [args["deviceId"]] if args.get("deviceId") is not None else []
    return tuple(named + list(args.get("deviceIds") or ()))


def _service_entries(args: Mapping[str, Any]) -> tuple[tuple[str, str], ...] | None:
    services = args.get("services")
    return None if services is None else tuple((s["serviceId"], s["action"]) for s in services)


def _share_request(args: Mapping[str, Any]) -> ShareRequest:
    if args.get("deviceId") is not None and args.get("deviceIds") is not None:
        raise ShareError("give deviceId or deviceIds, not both")
    device_ids = _named_devices(args)
    if not device_ids:
        raise ShareError("deviceId or deviceIds is required")
    return ShareRequest(
        device_ids=device_ids,
        emails=tuple(args["email"]),
        action=args["action"],
        scripting=args["scripting"],
        services=_service_entries(args),
    )


def _share_call(alias: str, args: Mapping[str, Any], error: str | None) -> ShareCall:
    return ShareCall(
        alias=alias,
        device_ids=_named_devices(args),
        emails=tuple(args["email"]),
        action=args["action"],
        services=_service_entries(args),
        error=error,
    )


def _resolve_share(_root: object, info: Info, **args: Any) -> bool:
    """Raising GraphQLError nulls just this alias and puts its path in `errors`."""
    context = info.context
    alias = str(info.path.key)
    try:
        context.state.share(_share_request(args), context.faults)
    except ShareError as error:
        context.counters.share_executed(context.record, _share_call(alias, args, str(error)))
        raise GraphQLError(str(error)) from None
    context.counters.share_executed(context.record, _share_call(alias, args, None))
    return True


def _build() -> GraphQLSchema:
    schema = build_schema(SDL)
    resolvers: dict[tuple[str, str], Callable[..., Any]] = {
        key: _adapt(resolver) for key, resolver in READ_RESOLVERS.items()
    }
    resolvers["Mutation", "share"] = _resolve_share
    for (type_name, field_name), resolver in resolvers.items():
        object_type = schema.get_type(type_name)
        if not isinstance(object_type, GraphQLObjectType):
            raise TypeError(f"{type_name} is not an object type in the SDL")
        object_type.fields[field_name].resolve = resolver
    return schema


SCHEMA = _build()


def root_field_count(document: DocumentNode, operation_name: str | None) -> int:
    """How many root fields (aliases) the operation to run holds; 0 if there is none."""
    operation = get_operation_ast(document, operation_name)
    return 0 if operation is None else len(operation.selection_set.selections)


def document_errors(document: DocumentNode) -> list[GraphQLError]:
    return validate(SCHEMA, document)


class DocumentCache:
    """Documents that parsed and validated without errors, by query text; the least
    recently used go first when it is full.

    Clients send the same few texts over and over (the values travel in variables), and
    parsing and validating them again was most of the emulator's CPU. Validity depends only
    on the text and the fixed schema, so a document that passed once passes every time;
    refused documents are never kept, so they are checked, and answered, afresh each time.
    Executing does not modify a document, so one parsed copy serves every request.

    A parsed document takes about 80 bytes per character of its text, so the size is
    bounded in characters as well as in entries; a text longer than the whole budget is
    simply not kept.
    """

    def __init__(
        self,
        max_entries: int = DOCUMENT_CACHE_ENTRIES,
        max_characters: int = DOCUMENT_CACHE_CHARACTERS,
    ) -> None:
        if max_entries < 1 or max_characters < 1:
            raise ValueError("a document cache needs room for at least one entry and character")
        self.max_entries = max_entries
        self.max_characters = max_characters
        self._documents: OrderedDict[str, DocumentNode] = OrderedDict()
        self._characters = 0

    def __len__(self) -> int:
        return len(self._documents)

    def __contains__(self, query: object) -> bool:
        return query in self._documents

    def get(self, query: str) -> DocumentNode | None:
        document = self._documents.get(query)
        if document is not None:
            self._documents.move_to_end(query)
        return document

    def add(self, query: str, document: DocumentNode) -> None:
        """Keep a document that `document_errors` found nothing wrong with."""
        if len(query) > self.max_characters:
            return
        if self._documents.pop(query, None) is not None:
            self._characters -= len(query)
        self._documents[query] = document
        self._characters += len(query)
        while len(self._documents) > self.max_entries or self._characters > self.max_characters:
            evicted, _ = self._documents.popitem(last=False)
            self._characters -= len(evicted)


def execute_document(
    document: DocumentNode,
    variables: dict[str, Any] | None,
    operation_name: str | None,
    context: RequestContext,
) -> dict[str, Any]:
    """Run a validated document; mutation root fields run in order, each failing alone.

    Queries go through `projection`, which gives graphql-core's answer in a fraction of its
    time, or declines and leaves the query to graphql-core."""
    answer = project(SCHEMA, document, operation_name, variables, READ_RESOLVERS, context)
    if answer is not None:
        return answer
    return execute_with_graphql_core(document, variables, operation_name, context)


def execute_with_graphql_core(
    document: DocumentNode,
    variables: dict[str, Any] | None,
    operation_name: str | None,
    context: RequestContext,
) -> dict[str, Any]:
    """The reference executor: every mutation, and every query `projection` declines."""
    result = execute_sync(
        SCHEMA,
        document,
        context_value=context,
        variable_values=variables,
        operation_name=operation_name,
    )
    return dict(result.formatted)
