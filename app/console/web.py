"""What every console page shares: who is asking, in which language, the CSRF token, rendering.

The session is Starlette's signed cookie (itsdangerous): it holds the user id, the CSRF token
and one-shot flash messages, nothing else. Who the user *is* is read from the database on each
request and turned into the same :class:`Principal` the API builds from a bearer token, so
every scoping and role rule is the API's own.
"""

from __future__ import annotations

import gettext
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy.orm import Session

from app.common.principal import Principal
from app.console import i18n
from app.deps import PlainRouteDbSession
from app.errors import AppError, Forbidden
from app.models import Role, User
from app.models.user import user_of_console_session
from app.taxonomy import service as taxonomy_service

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
HOME = {
    Role.ENTERPRISE: "/enterprise",
    Role.EXPERT: "/provider",
    Role.PLATFORM: "/provider",
    Role.COORDINATOR: "/coordinator",
    Role.ADMIN: "/coordinator",
}


class LoginRequired(Exception):
    """Raised by a page that needs a signed-in user; the handler redirects to /login."""


class CsrfRejected(AppError):
    status = 403
    type = "/problems/csrf"
    title = "Forbidden"


@lru_cache
def environment(locale: str) -> Environment:
    """One Jinja environment per language, with that language's catalogue installed."""
    env = Environment(
        loader=PackageLoader("app.console", "templates"),
        autoescape=select_autoescape(default=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    translate = i18n.translations(locale)
    env.install_gettext_translations(translate, newstyle=True)  # type: ignore[attr-defined]
    env.globals["label"] = lambda vocabulary, value: i18n.label(translate, vocabulary, value)
    env.filters["day"] = _day
    env.filters["moment"] = _moment
    env.filters["pct"] = _pct
    return env


def _day(value: date | datetime | None) -> str:
    return value.strftime("%Y-%m-%d") if value else "—"


def _moment(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "—"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


@dataclass
class Ctx:
    """The request as a page sees it."""

    request: Request
    session: Session
    locale: str
    user: User | None
    principal: Principal | None
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def translate(self) -> gettext.NullTranslations:
        return i18n.translations(self.locale)

    def _(self, message: str) -> str:
        return self.translate.gettext(message)

    @property
    def csrf(self) -> str:
        return csrf_token(self.request)

    def need(self, *roles: Role) -> Principal:
        """The principal, if it has one of ``roles`` (403 otherwise, like the API)."""
        if self.principal is None:
            raise LoginRequired()
        if roles and self.principal.role not in roles:
            allowed = ", ".join(r.value for r in roles)
            raise Forbidden(f"this page is for {allowed}; you are {self.principal.role.value}")
        return self.principal

    def category_names(self) -> dict[str, str]:
        """Key → name in the page's language; keys are never shown to people."""
        if "_categories" not in self.values:
            self.values["_categories"] = {
                c.key: (c.name_zh if self.locale == "zh" else c.name_en)
                for c in taxonomy_service.list_categories(self.session)
            }
        names: dict[str, str] = self.values["_categories"]
        return names

    def flash(self, message: str) -> None:
        self.request.session.setdefault("flash", []).append(message)

    def render(self, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        env = environment(self.locale)
        categories = self.category_names() if self.principal or "categories" in context else {}
        html = env.get_template(template).render(
            ctx=self,
            user=self.user,
            principal=self.principal,
            locale=self.locale,
            csrf=self.csrf,
            path=self.request.url.path,
            full_path=_full_path(self.request),
            flashes=self.request.session.pop("flash", []),
            category=lambda key: categories.get(key, "—"),
            humanize=lambda text: humanize(text, categories),
            exports=export_kinds(self.request.app),
            category_names=categories,
            **context,
        )
        return HTMLResponse(html, status_code=status_code)


def _full_path(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


EXPORT_KINDS = ("requests", "assignments", "plans", "providers", "stats")
EXPORTS_PREFIX = "/api/v1/exports/"


def export_kinds(app: Any) -> frozenset[str]:
    """The export downloads the API offers (none until that API exists): buttons only for those."""
    if not hasattr(app.state, "export_kinds"):
        kinds: set[str] = set()
        for path in app.openapi().get("paths", {}):
            if path.startswith(EXPORTS_PREFIX):
                tail = path.removeprefix(EXPORTS_PREFIX).split("/")[0]
                kinds |= set(EXPORT_KINDS) if tail.startswith("{") else {tail}
        app.state.export_kinds = frozenset(kinds & set(EXPORT_KINDS))
    found: frozenset[str] = app.state.export_kinds
    return found


def humanize(text: str, names: Mapping[str, str]) -> str:
    """Category keys inside engine-written reasons ("对应诉求:financing") become names."""
    if not names or not text:
        return text
    keys = "|".join(re.escape(k) for k in sorted(names, key=len, reverse=True))
    return re.sub(rf"(?<![a-z0-9_])({keys})(?![a-z0-9_])", lambda m: names[m.group(1)], text)


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


async def check_csrf(request: Request) -> None:
    """Every state-changing console request carries the session's token (form or header)."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    expected = request.session.get("csrf")
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not (isinstance(expected, str) and sent and secrets.compare_digest(expected, sent)):
        raise CsrfRejected("the form has expired; reload the page and try again")


def console_user(request: Request, session: Session) -> User | None:
    user = user_of_console_session(session, request.session)
    if user is None:
        request.session.pop("uid", None)
    return user


def get_ctx(request: Request, session: PlainRouteDbSession) -> Ctx:
    user = console_user(request, session)
    return Ctx(
        request=request,
        session=session,
        locale=i18n.pick_locale(request),
        user=user,
        principal=Principal.of(user) if user else None,
    )


PageCtx = Annotated[Ctx, Depends(get_ctx)]


def redirect(url: str) -> RedirectResponse:
    """After a successful POST: see-other, so a reload does not repeat it."""
    return RedirectResponse(url, status_code=303)


def login_redirect(request: Request) -> RedirectResponse:
    return RedirectResponse(f"/login?next={quote(_full_path(request), safe='')}", status_code=303)


def safe_next(target: str | None, fallback: str) -> str:
    """Only local paths: an open redirect would let a link send people elsewhere."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return fallback


def form_values(form: Any, *skip: str) -> dict[str, str]:
    """Plain strings; a field sent several times (checkboxes) joined with spaces."""
    return {
        key: " ".join(v.strip() for v in form.getlist(key) if isinstance(v, str))
        for key in form
        if key not in (CSRF_FIELD, *skip)
    }


async def read_form(request: Request) -> dict[str, str]:
    """The posted form as plain strings (read once, asynchronously; pages stay sync)."""
    return form_values(await request.form())


FormData = Annotated[dict[str, str], Depends(read_form)]
