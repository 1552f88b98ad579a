"""Answering read-only queries without graphql-core's executor.

graphql-core completes every field through a dozen Python calls (resolve info, path,
completion by type, field collection per object). A page of 1,000 devices with their access
lists is about 100,000 fields, and executing it took over a second of the emulator's time,
which made `export` of a large account wait on the emulator rather than on the network.

Here a validated query is compiled, once per request, into a tree of closures: fields
grouped by response key in first-seen order (the same merge graphql-core does), arguments
coerced with graphql-core's own `get_argument_values`, resolvers called with the same
arguments and context, leaf values serialized by the schema's own scalars. It runs over the
same views and resolver functions graphql-core is given, so the answer is the same JSON.

What it does not handle it declines, and graphql-core answers instead: anything but a
query, fragments, directives, introspection (`__schema`, `__type`), variables that do not
coerce, and any answer that would carry an error (a resolver raising, null in a non-null
position, a value a scalar refuses), because errors must be located and worded exactly as
graphql-core words them. Reads change nothing, so running a declined query again through
graphql-core is safe.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, TypeAlias, TypeVar

from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    OperationType,
    SelectionSetNode,
    Undefined,
    get_argument_values,
    get_operation_ast,
    get_variable_values,
    is_leaf_type,
)

ContextT = TypeVar("ContextT")

ReadResolver: TypeAlias = Callable[[Any, ContextT, dict[str, Any]], Any]
"""(parent value, request context, coerced arguments) -> the field's value before completion."""

_Complete: TypeAlias = Callable[[Any], Any]
_Plan: TypeAlias = list[tuple[str, _Complete]]


class _Decline(Exception):  # noqa: N818 - a signal, not an error
    """This query (or this answer) is graphql-core's to give."""


def project(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: dict[str, Any] | None,
    resolvers: Mapping[tuple[str, str], ReadResolver[ContextT]],
    context: ContextT,
) -> dict[str, Any] | None:
    """The formatted result of a query operation in a validated `document`, or None when
    graphql-core must answer it. Fields without a resolver read their value from the parent
    mapping, as graphql-core's default resolver does."""
    operation = get_operation_ast(document, operation_name)
    query_type = schema.query_type
    if (
        operation is None
        or operation.operation is not OperationType.QUERY
        or operation.directives
        or query_type is None
    ):
        return None
    coerced = get_variable_values(schema, operation.variable_definitions or (), variables or {})
    if isinstance(coerced, list):
        return None
    try:
        compiler = _Compiler(resolvers, context, coerced)
        plan = compiler.plan(query_type, [operation.selection_set])
        return {"data": _run(plan, None)}
    # Declining is always correct (graphql-core answers and reads change nothing), and
    # graphql-core turns a resolver's exception into a located error, which is its to word.
    except Exception:  # noqa: BLE001
        return None


def _run(plan: _Plan, source: Any) -> dict[str, Any]:
    return {key: complete(source) for key, complete in plan}


class _Compiler(Generic[ContextT]):
    """Turns selection sets into closures; variables are known, so arguments are coerced
    once here rather than once per parent value."""

    def __init__(
        self,
        resolvers: Mapping[tuple[str, str], ReadResolver[ContextT]],
        context: ContextT,
        variables: Any,
    ) -> None:
        self.resolvers = resolvers
        self.context = context
        self.variables = variables

    def plan(self, type_: GraphQLObjectType, selection_sets: Iterable[SelectionSetNode]) -> _Plan:
        groups: dict[str, list[FieldNode]] = {}
        for selection_set in selection_sets:
            for selection in selection_set.selections:
                if not isinstance(selection, FieldNode) or selection.directives:
                    raise _Decline
                key = (selection.alias or selection.name).value
                groups.setdefault(key, []).append(selection)
        return [(key, self.field(type_, nodes)) for key, nodes in groups.items()]

    def field(self, type_: GraphQLObjectType, nodes: list[FieldNode]) -> _Complete:
        """parent value -> this field's completed value."""
        name = nodes[0].name.value
        if name == "__typename":
            type_name = type_.name
            return lambda _source: type_name
        definition = type_.fields.get(name)
        if definition is None:
            raise _Decline
        complete = self.completer(definition.type, nodes)
        # graphql-core coerces every field's arguments, resolver or not, and an argument
        # that fails is an error; merged fields agree on them (validation checks it) and
        # graphql-core takes them from the first node too.
        args = get_argument_values(definition, nodes[0], self.variables)
        resolver = self.resolvers.get((type_.name, name))
        if resolver is None:

            def from_parent(source: Any) -> Any:
                value = source.get(name)
                if callable(value):  # graphql-core would call it; the views hold plain data
                    raise _Decline
                return complete(value)

            return from_parent
        context = self.context

        def resolved(source: Any) -> Any:
            return complete(resolver(source, context, args))

        return resolved

    def completer(self, type_: GraphQLOutputType, nodes: list[FieldNode]) -> _Complete:
        if isinstance(type_, GraphQLNonNull):
            inner = self.completer(type_.of_type, nodes)

            def non_null(value: Any) -> Any:
                if value is None:
                    raise _Decline
                return inner(value)

            return non_null
        if isinstance(type_, GraphQLList):
            item = self.completer(type_.of_type, nodes)

            def list_of(value: Any) -> Any:
                if value is None:
                    return None
                if not isinstance(value, list):
                    raise _Decline
                return [item(entry) for entry in value]

            return list_of
        if is_leaf_type(type_):
            serialize = type_.serialize

            def leaf(value: Any) -> Any:
                if value is None:
                    return None
                serialized = serialize(value)
                if serialized is None or serialized is Undefined:
                    raise _Decline
                return serialized

            return leaf
        if not isinstance(type_, GraphQLObjectType):
            raise _Decline  # interfaces and unions: the schema has none
        plan = self.plan(type_, [node.selection_set for node in nodes if node.selection_set])

        def object_of(value: Any) -> Any:
            return None if value is None else _run(plan, value)

        return object_of
