"""All versioned routes, mounted under /api/v1.

Each domain router is included into the app itself under ``API_PREFIX`` rather than through
one ``/api/v1`` router: FastAPI 0.165 matches an included router by scanning its routes once
to decide it matches and again to pick the route, so every level of nesting repeats the scan
of every route before the one asked for, on every request (about a tenth of the event loop's
CPU on a plain GET). One level keeps the same paths, order and OpenAPI document.
"""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import APIRouter
from fastapi.routing import APIRoute, _IncludedRouter
from starlette._utils import get_route_path
from starlette.routing import BaseRoute, Match
from starlette.types import Scope

from app.assignments.router import router as assignments_router
from app.auth.router import router as auth_router
from app.enterprises.router import router as enterprises_router
from app.events.router import router as events_router
from app.exclusions.router import router as exclusions_router
from app.exports.router import router as exports_router
from app.glossary.router import router as glossary_router
from app.imports.router import router as imports_router
from app.match_runs.router import router as match_runs_router
from app.notifications.router import router as notifications_router
from app.plans.router import router as plans_router
from app.policies.router import router as policies_router
from app.providers.router import router as providers_router
from app.requests.router import router as requests_router
from app.stats.router import router as stats_router
from app.supervision.router import router as supervision_router
from app.taxonomy.router import router as taxonomy_router
from app.taxonomy.router import templates_router
from app.webhooks.router import router as webhooks_router

API_PREFIX = "/api/v1"
API_ROUTERS: tuple[APIRouter, ...] = (
    auth_router,
    taxonomy_router,
    templates_router,
    glossary_router,
    enterprises_router,
    requests_router,
    providers_router,
    policies_router,
    match_runs_router,
    assignments_router,
    plans_router,
    exclusions_router,
    events_router,
    stats_router,
    supervision_router,
    notifications_router,
    webhooks_router,
    exports_router,
    imports_router,
)


class _PrefixGate:
    """``matches`` of one included router that refuses at once a path no route of it can
    match: one that starts with none of their paths' literal parts (what precedes the first
    ``{``: ``/api/v1/requests``, ``/api/v1/users/me``).

    FastAPI 0.165 decides whether an included router matches by running each of its routes'
    matchers (a scope key set and restored, a regular expression) in Python, and the app's
    router asks every included router in turn: a request for ``/api/v1/assignments`` paid
    about 80 µs of CPU to walk past the routers included before it, ``/api/v1/stats`` 100 µs.
    A route's regular expression only matches a path that starts with its literal part, so
    refusing the others here answers exactly what the full scan would, in one
    ``str.startswith``. The literal parts are worked out again whenever the router's routes
    change.
    """

    def __init__(self, included: _IncludedRouter) -> None:
        self._included = included
        self._matches = included.matches
        self._version: int | None = None
        self._own_version: int | None = None
        self._nested = True  # until seen: a router of routes only needs no walk (below)
        self._literals: tuple[str, ...] | None = None

    def __call__(self, scope: Scope) -> tuple[Match, Scope]:
        router = self._included.original_router
        # FastAPI's routes version of a router walks its routes for included routers, on
        # every call (3-5 µs here, for each router a request walks past). A router of routes
        # only changes when its own counter moves (every route or router added moves it), so
        # only a router that includes others takes the walk.
        if self._nested or router._routes_version != self._own_version:
            self._refresh(router)
        if self._literals is not None and not get_route_path(scope).startswith(self._literals):
            return Match.NONE, {}
        return self._matches(scope)

    def _refresh(self, router: APIRouter) -> None:
        version = router._get_routes_version()
        if version != self._version:
            self._literals = literal_parts(self._included)
            self._version = version
        self._own_version = router._routes_version
        self._nested = any(isinstance(route, _IncludedRouter) for route in router.routes)


def literal_parts(included: _IncludedRouter) -> tuple[str, ...] | None:
    """The distinct literal parts of the paths of ``included``'s routes; None (no gate) when
    it holds anything but plain API routes, the only ones known to match this way.

    Read from the router's own routes and the prefix it was included under (the path FastAPI
    compiles for each), not from its effective routes: building those is FastAPI's lazy,
    costly per-router state (``app.main.warm_routes``), which this must not force.
    """
    literals: set[str] = set()
    prefix = included.include_context.prefix
    for route in included.original_router.routes:
        if not isinstance(route, APIRoute):
            return None
        literals.add((prefix + route.path).split("{", 1)[0])
    return tuple(sorted(literals))


def gate_included_routers(routes: Iterable[BaseRoute]) -> int:
    """Put a :class:`_PrefixGate` on every included router of ``routes`` (an app's
    ``app.router.routes``); returns how many were gated."""
    gated = 0
    for route in routes:
        if isinstance(route, _IncludedRouter) and not isinstance(route.matches, _PrefixGate):
            route.matches = _PrefixGate(route)  # type: ignore[method-assign]
            gated += 1
    return gated
