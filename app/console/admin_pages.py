"""The administrator's pages: coordinators, categories with their clocks, the policy catalogue,
the glossary's additions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from app.auth import service as auth_service
from app.auth.schemas import StaffCreate, UserUpdate
from app.common.concurrency import check_if_match
from app.common.types import PathId
from app.console import i18n
from app.console.coordinator_pages import page_params
from app.console.forms import Invalid, attempt, clean, parse, version_read
from app.console.web import Ctx, FormData, PageCtx, redirect
from app.glossary import service as glossary_service
from app.glossary.schemas import GlossaryEntryCreate, GlossaryEntryUpdate
from app.models import EnterpriseSize, GlossaryEntry, Role, Tier
from app.policies import service as policy_service
from app.policies.schemas import PolicyCreate
from app.taxonomy import service as taxonomy_service
from app.taxonomy import templates as template_service
from app.taxonomy.schemas import CategoryUpdate, MilestoneTemplateUpdate

router = APIRouter(include_in_schema=False)
CLOCKS = ("route_days", "first_feedback_days", "resolve_days_ordinary", "resolve_days_major")
POLICY_TEXT = ("title", "summary", "issuer", "url", "valid_from_date", "valid_until_date")
POLICY_LISTS = ("tiers", "sizes", "industry_prefixes", "region_prefixes", "categories")


def _split(value: str) -> list[str]:
    """Comma- or space-separated codes, as people type them (35, 4101 / C17 C18)."""
    return [part for part in value.replace(",", " ").replace(",", " ").split() if part]


_TERM_SEPARATORS = str.maketrans(dict.fromkeys(",，、;；", "\n"))


def split_terms(value: str) -> list[str]:
    """Glossary terms as people type them: separated by commas (either width), 、, semicolons
    or lines, never by spaces (``late payment`` is one English term)."""
    return [term.strip() for term in value.translate(_TERM_SEPARATORS).splitlines() if term.strip()]


GLOSSARY_SHOWN = 200  # the page lists this many entries; the API pages through them all


STEP_FIELDS = ("title_zh", "title_en", "owner", "clock", "after_days")


def step_lines(steps: list[dict[str, Any]]) -> str:
    """A template as the admin edits it: one step a line, ``标题 | Title | owner | clock | days``."""
    return "\n".join(" | ".join(str(step.get(k, "")) for k in STEP_FIELDS) for step in steps)


def _parse_steps(text: str) -> list[dict[str, str]]:
    """Lines back into steps; missing trailing parts take the schema's defaults."""
    steps = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.replace("｜", "|").split("|")]
        if any(parts):
            steps.append({k: v for k, v in zip(STEP_FIELDS, parts, strict=False) if v})
    return steps


def _admin(ctx: Ctx, errors: dict[str, str] | None = None, **values: dict[str, str]) -> Response:
    ctx.need(Role.ADMIN)
    categories = taxonomy_service.list_categories(ctx.session)
    templates = template_service.steps_by_category(ctx.session, (c.key for c in categories))
    coordinators = [
        u for u in auth_service.list_users(ctx.session) if u.role in (Role.COORDINATOR, Role.ADMIN)
    ]
    policies = policy_service.list_(
        ctx.session, filters=policy_service.PolicyFilter(), page=page_params(None, 200)
    )
    glossary = glossary_service.list_(ctx.session, page=page_params(None, GLOSSARY_SHOWN))
    return ctx.render(
        "admin/index.html",
        staff=coordinators,
        categories=categories,
        template_lines={k: step_lines(v) for k, v in templates.items()},
        policies=policies,
        glossary=glossary,
        clocks=CLOCKS,
        tiers=[(t.value, ctx._(i18n.LABELS["tier"][t.value])) for t in Tier if t != Tier.NONE],
        sizes=[(s.value, ctx._(i18n.LABELS["size"][s.value])) for s in EnterpriseSize],
        errors=errors or {},
        staff_values=values.get("staff", {"role": "coordinator"}),
        policy_values=values.get("policy", {}),
        category_values=values.get("category", {}),
        glossary_values=values.get("glossary", {}),
    )


@router.get("/admin")
def admin_home(ctx: PageCtx) -> Response:
    return _admin(ctx)


@router.post("/admin/staff")
def create_staff(ctx: PageCtx, values: FormData) -> Response:
    principal = ctx.need(Role.ADMIN)
    body: dict[str, Any] = clean(
        {k: values.get(k, "") for k in ("email", "password", "full_name", "role")}
    )
    body["region_prefixes"] = _split(values.get("region_prefixes", ""))
    try:
        data = parse(StaffCreate, body)
        attempt(
            ctx.session,
            lambda: auth_service.create_staff(ctx.session, principal=principal, data=data),
        )
    except Invalid as exc:
        return _admin(ctx, {f"staff.{k}": v for k, v in exc.errors.items()}, staff=values)
    ctx.flash(ctx._("Account created: {email}").format(email=data.email))
    return redirect("/admin")


@router.post("/admin/staff/{user_id}")
def update_staff(ctx: PageCtx, user_id: PathId, values: FormData) -> Response:
    principal = ctx.need(Role.ADMIN)
    body: dict[str, Any] = {"is_active": values.get("is_active") == "on"}
    if "region_prefixes" in values:
        body["region_prefixes"] = _split(values["region_prefixes"])
    try:
        data = parse(UserUpdate, body)
        user = auth_service.get_user(ctx.session, user_id)
        attempt(
            ctx.session,
            lambda: auth_service.update_user(
                ctx.session, principal=principal, user=user, data=data
            ),
        )
    except Invalid as exc:
        return _admin(ctx, {f"user{user_id}.{k}": v for k, v in exc.errors.items()})
    ctx.flash(ctx._("Saved."))
    return redirect("/admin")


@router.post("/admin/categories/{key}")
def update_category(ctx: PageCtx, key: str, values: FormData) -> Response:
    principal = ctx.need(Role.ADMIN)
    fields = ("name_zh", "name_en", "default_severity", *CLOCKS)
    try:
        data = parse(CategoryUpdate, clean({k: values.get(k, "") for k in fields}))
        attempt(
            ctx.session,
            lambda: taxonomy_service.update_category(
                ctx.session,
                principal=principal,
                key=key,
                changes=data.model_dump(exclude_unset=True),
            ),
        )
    except Invalid as exc:
        errors = {f"{key}.{k}": v for k, v in exc.errors.items()}
        return _admin(ctx, errors, category={f"{key}.{k}": v for k, v in values.items()})
    ctx.flash(ctx._("Saved."))
    return redirect("/admin#categories")


@router.post("/admin/categories/{key}/milestones")
def update_milestone_template(ctx: PageCtx, key: str, values: FormData) -> Response:
    """The category's milestone template, through the API's schema and service."""
    principal = ctx.need(Role.ADMIN)
    text = values.get("steps", "")
    try:
        data = parse(MilestoneTemplateUpdate, {"steps": _parse_steps(text)})
        attempt(
            ctx.session,
            lambda: template_service.update(
                ctx.session, principal=principal, category_key=key, steps=data.steps
            ),
        )
    except Invalid as exc:
        message = "; ".join(exc.errors.values())
        return _admin(ctx, {f"{key}.steps": message}, category={f"{key}.steps": text})
    ctx.flash(ctx._("Saved."))
    return redirect(f"/admin#template-{key}")


@router.post("/admin/policies")
def create_policy(ctx: PageCtx, values: FormData) -> Response:
    principal = ctx.need(Role.ADMIN)
    body: dict[str, Any] = clean({k: values.get(k, "") for k in POLICY_TEXT})
    body |= {k: _split(values.get(k, "")) for k in POLICY_LISTS}
    try:
        data = parse(PolicyCreate, body)
        attempt(
            ctx.session,
            lambda: policy_service.create(ctx.session, principal=principal, data=data),
        )
    except Invalid as exc:
        return _admin(ctx, {f"policy.{k}": v for k, v in exc.errors.items()}, policy=values)
    ctx.flash(ctx._("Policy added: {title}").format(title=data.title))
    return redirect("/admin#policies")


@router.post("/admin/glossary")
def create_glossary_entry(ctx: PageCtx, values: FormData) -> Response:
    """Terms for a concept, through the API's schema and service: the next match run uses
    them."""
    principal = ctx.need(Role.ADMIN)
    body = {
        "concept": values.get("concept", "").strip(),
        "zh": split_terms(values.get("zh", "")),
        "en": split_terms(values.get("en", "")),
    }
    try:
        data = parse(GlossaryEntryCreate, body)
        attempt(
            ctx.session,
            lambda: glossary_service.create(ctx.session, principal=principal, **data.model_dump()),
        )
    except Invalid as exc:
        errors = {f"glossary.{k}": v for k, v in exc.errors.items()}
        return _admin(ctx, errors, glossary=values)
    ctx.flash(ctx._("Glossary entry added: {concept}").format(concept=data.concept))
    return redirect("/admin#glossary")


def _entry_as_read(ctx: Ctx, entry_id: int, values: FormData) -> GlossaryEntry:
    """The entry, if it is still at the version the page showed (else 412 at the form)."""
    entry = glossary_service.get(ctx.session, entry_id)
    check_if_match(version_read(values), entry.version)
    return entry


@router.post("/admin/glossary/{entry_id}")
def update_glossary_entry(ctx: PageCtx, entry_id: PathId, values: FormData) -> Response:
    """New term lists for an entry, against the version the admin read (a concurrent edit is
    refused, not overwritten)."""
    principal = ctx.need(Role.ADMIN)
    body = {"zh": split_terms(values.get("zh", "")), "en": split_terms(values.get("en", ""))}

    def update() -> object:
        entry = _entry_as_read(ctx, entry_id, values)
        return glossary_service.update(
            ctx.session, principal=principal, entry=entry, changes=data.model_dump()
        )

    try:
        data = parse(GlossaryEntryUpdate, body)
        attempt(ctx.session, update)
    except Invalid as exc:
        return _admin(ctx, {f"entry{entry_id}.{k}": v for k, v in exc.errors.items()})
    ctx.flash(ctx._("Saved."))
    return redirect(f"/admin#entry-{entry_id}")


@router.post("/admin/glossary/{entry_id}/delete")
def delete_glossary_entry(ctx: PageCtx, entry_id: PathId, values: FormData) -> Response:
    principal = ctx.need(Role.ADMIN)

    def delete() -> None:
        entry = _entry_as_read(ctx, entry_id, values)
        glossary_service.delete(ctx.session, principal=principal, entry=entry)

    try:
        attempt(ctx.session, delete)
    except Invalid as exc:
        return _admin(ctx, {f"entry{entry_id}.{k}": v for k, v in exc.errors.items()})
    ctx.flash(ctx._("Glossary entry withdrawn."))
    return redirect("/admin#glossary")
