"""Log-in, log-out, the language switch and an enterprise's self-registration."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import TypeAdapter, ValidationError

from app.auth import service as auth_service
from app.auth.schemas import EnterpriseRegistration
from app.common.credentials import decode_access_token
from app.common.types import Uscc
from app.console import i18n
from app.console.forms import Invalid, attempt, clean, parse
from app.console.web import HOME, FormData, PageCtx, redirect, safe_next
from app.deps import Scopes, SettingsDep
from app.errors import Unauthorized
from app.models import EnterpriseSize, Tier

router = APIRouter(include_in_schema=False)
_USCC = TypeAdapter(Uscc)
ENTERPRISE_FIELDS = (
    "name",
    "uscc",
    "region_code",
    "industry_code",
    "size",
    "tier",
    "headcount",
    "contact_name",
    "contact_phone",
    "description",
)
LANG_COOKIE_SECONDS = 365 * 24 * 3600


@router.get("/")
def home(ctx: PageCtx) -> Response:
    if ctx.principal is None:
        return redirect("/login")
    return redirect(HOME[ctx.principal.role])


@router.get("/login")
def login_page(ctx: PageCtx, next: str = "") -> Response:
    if ctx.principal is not None:
        return redirect(safe_next(next, HOME[ctx.principal.role]))
    return ctx.render("login.html", values={"next": next}, errors={})


@router.post("/login")
def log_in(
    ctx: PageCtx,
    settings: SettingsDep,
    scopes: Scopes,
    username: Annotated[str, Form(max_length=254)] = "",
    password: Annotated[str, Form(max_length=128)] = "",
    next: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """The API's own check (same accounts, same timing-safe verify, same 'deactivated' rule)."""
    try:
        token, _ = auth_service.authenticate(
            scopes, email=username, password=password, settings=settings
        )
    except Unauthorized as exc:
        values = {"username": username, "next": next}
        message = ctx._("Wrong e-mail or password.")
        if "deactivated" in exc.detail:
            message = ctx._("This account is deactivated.")
        return ctx.render("login.html", values=values, errors={"": message})
    claims = decode_access_token(token, secret_key=settings.secret_key)
    if claims is None:  # cannot happen for a token just issued with this key
        return ctx.render("login.html", values={"username": username, "next": next})
    _start_session(ctx.request, claims.user_id, claims.token_version)
    role = auth_service.get_user(ctx.session, claims.user_id).role
    return redirect(safe_next(next, HOME[role]))


def _start_session(request: Request, user_id: int, token_version: int) -> None:
    """A fresh session (and CSRF token) at log-in, so a planted cookie is worth nothing; it
    remembers the account's token version, so a password change ends it."""
    request.session.clear()
    request.session["uid"] = user_id
    request.session["ver"] = token_version


@router.post("/logout")
def log_out(request: Request) -> Response:
    request.session.clear()
    return redirect("/login")


@router.get("/lang/{code}")
def switch_language(code: str, next: str = "/") -> Response:
    response = redirect(safe_next(next, "/"))
    if code in i18n.LOCALES:
        response.set_cookie(
            i18n.LANG_COOKIE, code, max_age=LANG_COOKIE_SECONDS, samesite="lax", httponly=True
        )
    return response


def _registration_options(ctx: PageCtx) -> dict[str, Any]:
    return {
        "sizes": [
            (s.value, ctx.translate.gettext(i18n.LABELS["size"][s.value])) for s in EnterpriseSize
        ],
        "tiers": [(t.value, ctx.translate.gettext(i18n.LABELS["tier"][t.value])) for t in Tier],
    }


@router.get("/register")
def registration_page(ctx: PageCtx) -> Response:
    values = {"tier": Tier.NONE.value, "size": EnterpriseSize.SMALL.value}
    return ctx.render("register.html", values=values, errors={}, **_registration_options(ctx))


@router.get("/register/uscc", response_class=HTMLResponse)
def check_uscc(ctx: PageCtx, uscc: Annotated[str, Query(max_length=40)] = "") -> str:
    """Checked as the user types (htmx): the API's own USCC type, python-stdnum inside."""
    if not uscc.strip():
        return ""
    try:
        _USCC.validate_python(uscc)
    except ValidationError as exc:
        message = exc.errors()[0]["msg"]
        return f'<span class="error" role="alert">{_escape(message)}</span>'
    return f'<span class="ok">✓ {_escape(ctx._("Valid credit code"))}</span>'


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@router.post("/register")
def register(ctx: PageCtx, values: FormData) -> Response:
    try:
        data = _registration(values)
        user = attempt(
            ctx.session, lambda: auth_service.register_enterprise(ctx.session, data=data)
        )
    except Invalid as exc:
        return ctx.render(
            "register.html",
            values=values,
            errors=exc.errors,
            **_registration_options(ctx),
        )
    _start_session(ctx.request, user.id, user.token_version)
    ctx.flash(ctx._("Welcome! Your company is registered."))
    return redirect("/enterprise")


def _registration(values: dict[str, str]) -> EnterpriseRegistration:
    company = clean({k: values.get(k, "") for k in ENTERPRISE_FIELDS})
    body = clean({k: values.get(k, "") for k in ("email", "password", "full_name")})
    body["enterprise"] = company
    rename = {f"enterprise.{k}": k for k in ENTERPRISE_FIELDS} | {"enterprise": "name"}
    return parse(EnterpriseRegistration, body, rename=rename)
