"""A route's dependency tree, flattened once into a plan, solved per request without FastAPI's
generic walk; FastAPI's own handler for anything the plan does not cover.

Why: FastAPI 0.165 solves a route's dependencies by walking the tree on every request. At
every node it checks the dependency overrides, recurses into a new ``solve_dependencies``
call that builds a fresh ``Response`` and a ``SolvedDependency``, works out the node's cache
key (its OAuth scopes, sorted) and classifies the callable (generator? coroutine?) again.
Measured on the served app that walk, apart from the parameter validation and the
dependencies' own work, was about a tenth of the event loop's CPU. All of it depends on the
route alone, so it is done here once.

Parameters are read as FastAPI's ``request_params_to_args`` reads them, with what it works
out from each field on every request (its aliases, whether its annotation is a sequence:
``field_annotation_is_sequence`` walks the type each time, about 100 µs of a list request's
query model) worked out once; the values are validated by FastAPI's own function, and
tests/app/test_route_plan.py holds the two readers to the same values and errors. The body
is validated by FastAPI's ``request_body_to_args``, the response by its
``serialize_response``, and the OpenAPI document (built from the route's ``dependant``, never
from its handler) does not change.

Errors take FastAPI's path from the start: every parameter of every node is validated
*before* any dependency runs (validation has no side effects), and on any error the request
is handed to FastAPI's handler untouched, which then produces exactly its own response,
including its order (a dependency's 401 before a parameter's 422). The body read here is
kept on the ``Request``, so FastAPI reads the same bytes again. So is every request while
``dependency_overrides`` is not empty (the tests' stand-ins) or FastAPI's telemetry is on.
"""

from __future__ import annotations

import email.message
import json
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from fastapi import params
from fastapi._body_limit import get_body_limit_error
from fastapi._compat import (
    ModelField,
    Undefined,
    field_annotation_is_sequence,
    get_cached_model_fields,
)
from fastapi.datastructures import DefaultPlaceholder
from fastapi.dependencies.models import (
    Dependant,
    _get_cache_key,
    _is_async_gen_callable,
    _is_coroutine_callable,
    _is_gen_callable,
)
from fastapi.dependencies.utils import (
    _get_multidict_extras,
    _get_param_aliases,
    _get_param_model,
    _is_json_field,
    _validate_value_with_model_field,
    request_body_to_args,
    request_params_to_args,
)
from fastapi.exceptions import EndpointContext
from fastapi.routing import _extract_endpoint_context, serialize_response
from fastapi.telemetry._api import _get_request_telemetry
from fastapi.types import IncEx
from fastapi.utils import is_body_allowed_for_status_code
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, ImmutableMultiDict
from starlette.exceptions import HTTPException
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY
from starlette.requests import Request
from starlette.responses import Response

Handler = Callable[[Request], Coroutine[Any, Any, Response]]
# Each kind of parameter (a ``Dependant`` attribute) and the ``Request`` attribute it is
# read from, in the order FastAPI validates them.
_LOCATIONS = (
    ("path_params", "path_params"),
    ("query_params", "query_params"),
    ("header_params", "headers"),
    ("cookie_params", "cookies"),
)
_JSON_CONTENT_TYPES: dict[str, bool] = {}  # content-type header → FastAPI reads it as JSON
_JSON_CONTENT_TYPES_KEPT = 256


class _Fallback(Exception):
    """Nothing has run yet: FastAPI's handler answers this request from the start."""


@dataclass(frozen=True, slots=True)
class _Scalar:
    """One parameter, or one field of a parameter model, with what FastAPI's
    ``_get_multidict_value`` works out from its field on every request (``_get_param_aliases``,
    ``field_annotation_is_sequence``: most of a list request's parameter time)."""

    field: ModelField
    name: str
    aliases: tuple[tuple[str, str], ...]  # (validation alias, request key), preferred first
    listed: bool  # a sequence (and not Json): every value of a repeated key
    sequence: bool  # an empty list of values counts as absent
    in_: str  # "query", "path", ... ("" for a model's field)


@dataclass(frozen=True, slots=True)
class _ModelParams:
    """A parameter model (``Annotated[Model, Query()]``) read from a multidict other than the
    headers: FastAPI's ``_request_param_model_to_args`` with its per-field work done once."""

    field: ModelField
    name: str
    fields: tuple[_Scalar, ...]
    own_names: frozenset[str]
    optional: bool  # annotated ``Model | None``: absent when none of its names is sent
    extra_counts: bool  # extra="allow"/"forbid": an unknown key alone makes it present
    loc: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _ParamGroup:
    """One kind of parameter of a node; ``readers`` None: FastAPI's ``request_params_to_args``
    reads them (header models, whose names are converted per request)."""

    source: str  # the Request attribute they are read from
    fields: list[ModelField]
    readers: tuple[_Scalar | _ModelParams, ...] | None


def _scalar(field: ModelField) -> _Scalar:
    sequence = field_annotation_is_sequence(field.field_info.annotation)
    in_ = field.field_info.in_.value if isinstance(field.field_info, params.Param) else ""
    return _Scalar(
        field=field,
        name=field.name,
        aliases=tuple(_get_param_aliases(field)),
        listed=sequence and not _is_json_field(field),
        sequence=sequence,
        in_=in_,
    )


def _param_group(source: str, fields: list[ModelField]) -> _ParamGroup:
    readers: list[_Scalar | _ModelParams] = []
    for field in fields:
        model = _get_param_model(field)
        if model is None:
            readers.append(_scalar(field))
            continue
        if source == "headers":
            return _ParamGroup(source, fields, None)
        own = tuple(_scalar(own_field) for own_field in get_cached_model_fields(model))
        readers.append(
            _ModelParams(
                field=field,
                name=field.name,
                fields=own,
                own_names=frozenset(name for scalar in own for _, name in scalar.aliases),
                optional=field.field_info.annotation is not model,
                extra_counts=model.model_config.get("extra") in ("allow", "forbid"),
                loc=(_scalar(field).in_,),
            )
        )
    return _ParamGroup(source, fields, tuple(readers))


def _read_params(group: _ParamGroup, received: Any) -> tuple[dict[str, Any], list[Any]]:
    """``request_params_to_args(group.fields, received)``, the same values and errors."""
    if group.readers is None:
        return request_params_to_args(group.fields, received)
    values: dict[str, Any] = {}
    errors: list[Any] = []
    for reader in group.readers:
        if isinstance(reader, _ModelParams):
            validated, found_errors = _read_model(reader, received)
        else:
            _alias, key, sent = _multidict_value(reader, received)
            validated, found_errors = _validate_value_with_model_field(
                field=reader.field, value=sent, values=values, loc=(reader.in_, key)
            )
        if found_errors:
            errors.extend(found_errors)
        else:
            values[reader.name] = validated
    return values, errors


def _multidict_value(scalar: _Scalar, received: Any) -> tuple[str, str, Any]:
    """The alias chosen, its request key and the value sent (``Undefined``: none), as
    ``_get_multidict_value`` finds them (``received`` is never form data here)."""
    aliases = scalar.aliases
    alias, key = aliases[0]
    if len(aliases) > 1:
        alias, key = next((pair for pair in aliases if pair[1] in received), aliases[0])
    if scalar.listed and isinstance(received, (ImmutableMultiDict, Headers)):
        value = received.getlist(key)
    else:
        value = received.get(key, None)
    if value is None or (scalar.sequence and len(value) == 0):
        return alias, key, Undefined
    return alias, key, value


def _read_model(model: _ModelParams, received: Any) -> tuple[Any, list[Any]]:
    """``_request_param_model_to_args`` for a source other than the headers."""
    found: dict[str, Any] = {}
    processed: set[str] = set()
    for scalar in model.fields:
        alias, key, sent = _multidict_value(scalar, received)
        if sent is not Undefined:
            found[alias] = sent
        processed.add(key)
    found.update(_get_multidict_extras(received, processed))
    value: Any = found
    if model.optional and not (
        model.own_names.intersection(received) or (model.extra_counts and found)
    ):
        value = Undefined
    return _validate_value_with_model_field(
        field=model.field, value=value, values={}, loc=model.loc
    )


@dataclass(frozen=True, slots=True)
class _Node:
    """One call of the tree, in FastAPI's order (a dependency's own dependencies first).

    ``reuse`` marks a dependency already solved earlier in the tree: FastAPI serves it from
    the request's cache, so only its value is handed to ``parent`` again.
    """

    call: Callable[..., Any]
    key: Any
    reuse: bool
    slot: int  # this node's arguments
    parent: int  # the arguments it is passed into (-1: none, it is the endpoint)
    name: str | None  # its parameter name there (None: a parameterless dependency)
    is_coroutine: bool
    params: tuple[_ParamGroup, ...]  # one per kind of parameter it has
    body_params: list[ModelField]
    request_name: str | None  # Request / HTTPConnection parameters
    connection_name: str | None
    response_name: str | None


@dataclass(frozen=True, slots=True)
class RoutePlan:
    """Everything FastAPI's handler decides from the route, decided once."""

    nodes: tuple[_Node, ...]  # the endpoint last
    slots: int
    body_field: ModelField | None
    embed_body_fields: bool
    strict_content_type: bool
    uses_response: bool
    status_code: int | None
    response_field: ModelField | None
    response_class: type[Response]
    dump_json: bool
    include: IncEx | None
    exclude: IncEx | None
    by_alias: bool
    exclude_unset: bool
    exclude_defaults: bool
    exclude_none: bool
    overrides_provider: Any | None


def compile_plan(route: Any) -> RoutePlan | str:
    """The plan of ``route`` (an ``APIRoute`` or the effective context of an included one:
    whatever FastAPI builds its handler from), or why it has none (FastAPI's handler then
    serves it on every request)."""
    if route.is_json_stream or route.is_sse_stream or route.stream_item_field is not None:
        return "streams its response"
    body_field = route.body_field
    if body_field is not None and isinstance(body_field.field_info, params.Form):
        return "reads a form"
    root: Dependant = route.dependant
    if not _is_coroutine_callable(root.call) or _is_async_gen_callable(root.call):
        return "its endpoint is not a coroutine"
    nodes: list[_Node] = []
    slots: list[int] = [0]
    reason = _flatten(root, parent=-1, name=None, nodes=nodes, seen=set(), slots=slots)
    if reason is not None:
        return reason
    response_class = route.response_class
    default_class = isinstance(response_class, DefaultPlaceholder)
    strict = route.strict_content_type
    return RoutePlan(
        nodes=tuple(nodes),
        slots=slots[0],
        body_field=body_field,
        embed_body_fields=route._embed_body_fields,
        strict_content_type=strict.value if isinstance(strict, DefaultPlaceholder) else strict,
        uses_response=any(node.response_name for node in nodes),
        status_code=route.status_code,
        response_field=route.response_field,
        response_class=response_class.value if default_class else response_class,
        dump_json=route.response_field is not None and default_class,
        include=route.response_model_include,
        exclude=route.response_model_exclude,
        by_alias=route.response_model_by_alias,
        exclude_unset=route.response_model_exclude_unset,
        exclude_defaults=route.response_model_exclude_defaults,
        exclude_none=route.response_model_exclude_none,
        overrides_provider=route.dependency_overrides_provider,
    )


def _flatten(
    dependant: Dependant,
    *,
    parent: int,
    name: str | None,
    nodes: list[_Node],
    seen: set[Any],
    slots: list[int],
) -> str | None:
    """Append ``dependant``'s calls to ``nodes`` in FastAPI's order (its own dependencies
    first, depth first); a reason if the plan cannot do what FastAPI would."""
    call = dependant.call
    if call is None:
        return "a dependency without a callable"
    label = getattr(call, "__name__", repr(call))
    if (
        not dependant.use_cache
        or dependant.own_oauth_scopes
        or dependant.parent_oauth_scopes
        or dependant.security_scopes_param_name
        or dependant.background_tasks_param_name
        or dependant.websocket_param_name
        or dependant.concurrency is not None
    ):
        return f"{label} needs what the plan does not do"
    if _is_gen_callable(call) or _is_async_gen_callable(call):
        return f"{label} is a generator dependency"
    key = _get_cache_key(dependant=dependant)
    if parent >= 0 and key in seen:
        # FastAPI walks this subtree again and finds each of its calls in the request's
        # cache (no scopes, every node cached: checked above), so only the value is new.
        nodes.append(_Node(call, key, True, -1, parent, name, False, (), [], None, None, None))
        return None
    slot = slots[0]
    slots[0] += 1
    for sub in dependant.dependencies:
        reason = _flatten(sub, parent=slot, name=sub.name, nodes=nodes, seen=seen, slots=slots)
        if reason is not None:
            return reason
    seen.add(key)
    nodes.append(
        _Node(
            call=call,
            key=key,
            reuse=False,
            slot=slot,
            parent=parent,
            name=name,
            is_coroutine=_is_coroutine_callable(call),
            params=tuple(
                _param_group(source, list(fields))
                for location, source in _LOCATIONS
                if (fields := getattr(dependant, location))
            ),
            body_params=list(dependant.body_params),
            request_name=dependant.request_param_name,
            connection_name=dependant.http_connection_param_name,
            response_name=dependant.response_param_name,
        )
    )
    return None


def planned_handler(plan: RoutePlan, dependant: Dependant, fallback: Handler) -> Handler:
    """A handler answering as ``fallback`` (FastAPI's, for the same route) does, through
    ``plan``; ``fallback`` itself for a request the plan leaves to it."""
    endpoint = dependant.call
    assert endpoint is not None
    nodes = plan.nodes

    async def app(request: Request) -> Response:
        provider = plan.overrides_provider
        if (provider is not None and provider.dependency_overrides) or (
            _get_request_telemetry() is not None
        ):
            return await fallback(request)
        try:
            arguments = await _validated_arguments(plan, request)
        except _Fallback:
            return await fallback(request)
        # From here on this is FastAPI's ``solve_dependencies`` and ``get_request_handler``
        # for a request whose every parameter is valid.
        response: Response | None = None
        if plan.uses_response:
            response = Response()
            del response.headers["content-length"]
            response.status_code = None  # type: ignore[assignment]
        cache: dict[Any, Any] = {}
        solved: Any = None
        for node in nodes:
            if node.reuse:
                if node.name is not None:
                    arguments[node.parent][node.name] = cache[node.key]
                continue
            values = arguments[node.slot]
            if node.connection_name is not None:
                values[node.connection_name] = request
            if node.request_name is not None:
                values[node.request_name] = request
            if node.response_name is not None:
                values[node.response_name] = response
            if node.parent < 0:
                break  # the endpoint, always last
            if node.is_coroutine:
                solved = await node.call(**values)
            else:
                solved = await run_in_threadpool(node.call, **values)
            cache[node.key] = solved
            if node.name is not None:
                arguments[node.parent][node.name] = solved
        raw_response = await endpoint(**arguments[0])
        if isinstance(raw_response, Response):
            return raw_response  # its background stays (no dependency asked for tasks)
        response_args: dict[str, Any] = {"background": None}
        dependency_status = response.status_code if response is not None else None
        current_status_code = plan.status_code if plan.status_code else dependency_status
        if current_status_code is not None:
            response_args["status_code"] = current_status_code
        if dependency_status:
            response_args["status_code"] = dependency_status
        content = await serialize_response(
            field=plan.response_field,
            response_content=raw_response,
            include=plan.include,
            exclude=plan.exclude,
            by_alias=plan.by_alias,
            exclude_unset=plan.exclude_unset,
            exclude_defaults=plan.exclude_defaults,
            exclude_none=plan.exclude_none,
            is_coroutine=True,
            endpoint_ctx=_endpoint_context(dependant, request),
            dump_json=plan.dump_json,
        )
        if plan.dump_json:
            answer = Response(content=content, media_type="application/json", **response_args)
        else:
            answer = plan.response_class(content, **response_args)
        if not is_body_allowed_for_status_code(answer.status_code):
            answer.body = b""
        if response is not None:
            answer.headers.raw.extend(response.headers.raw)
        return answer

    return app


async def _validated_arguments(plan: RoutePlan, request: Request) -> list[dict[str, Any]]:
    """Every node's parameters and body, validated as FastAPI validates them; ``_Fallback``
    at the first error (FastAPI then reports all of them, after running what it runs)."""
    body: Any = Undefined
    if plan.body_field is not None:
        body = await _read_body(request, strict_content_type=plan.strict_content_type)
    arguments: list[dict[str, Any]] = [{} for _ in range(plan.slots)]
    for node in plan.nodes:
        if node.reuse:
            continue
        values = arguments[node.slot]
        for group in node.params:
            found, errors = _read_params(group, getattr(request, group.source))
            if errors:
                raise _Fallback
            values.update(found)
        if node.body_params:
            found, errors = await request_body_to_args(
                body_fields=node.body_params,
                received_body=body,
                embed_body_fields=plan.embed_body_fields,
            )
            if errors:
                raise _Fallback
            values.update(found)
    return arguments


async def _read_body(request: Request, *, strict_content_type: bool) -> Any:
    """The body as FastAPI's handler reads it (a JSON body decoded, other bytes as they
    are), with its errors; a body that is not valid JSON is left to FastAPI's handler."""
    try:
        body_bytes = await request.body()
        if not body_bytes:
            return Undefined
        content_type = request.headers.get("content-type")
        reads_json = _reads_json(content_type) if content_type else not strict_content_type
        return await request.json() if reads_json else body_bytes
    except json.JSONDecodeError as exc:
        raise _Fallback from exc
    except HTTPException:
        raise
    except Exception as exc:
        if MAX_BODY_SIZE_SCOPE_KEY in request.scope and (error := get_body_limit_error(exc)):
            raise error from exc
        raise HTTPException(status_code=400, detail="There was an error parsing the body") from exc


def _reads_json(content_type: str) -> bool:
    """FastAPI's test of a content type (``application/json`` or ``application/*+json``),
    remembered per header value: it parses the header with ``email.message`` each time."""
    known = _JSON_CONTENT_TYPES.get(content_type)
    if known is None:
        message = email.message.Message()
        message["content-type"] = content_type
        known = False
        if message.get_content_maintype() == "application":
            subtype = message.get_content_subtype()
            known = subtype == "json" or subtype.endswith("+json")
        if len(_JSON_CONTENT_TYPES) < _JSON_CONTENT_TYPES_KEPT:
            _JSON_CONTENT_TYPES[content_type] = known
    return known


def _endpoint_context(dependant: Dependant, request: Request) -> EndpointContext:
    """What FastAPI's handler says of the endpoint in a response validation error."""
    endpoint_ctx = (
        _extract_endpoint_context(dependant.call) if dependant.call else EndpointContext()
    )
    if dependant.path:
        mount_path = request.scope.get("root_path", "").rstrip("/")
        endpoint_ctx["path"] = f"{request.method} {mount_path}{dependant.path}"
    return endpoint_ctx
