from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from app.common.concurrency import IfMatch, check_if_match, set_etag
from app.common.pagination import KeyPageDep, PageInQuery
from app.common.schemas import Page, problem_responses
from app.common.types import CategoryKey
from app.deps import AdminOnly, CurrentPrincipal, DbSession, IdempotencyDep, OneHopRoute
from app.models import Category, MilestoneTemplate
from app.taxonomy import service as taxonomy_service
from app.taxonomy import templates as template_service
from app.taxonomy.schemas import (
    CategoryCreate,
    CategoryRead,
    CategoryUpdate,
    MilestoneTemplateRead,
    MilestoneTemplateUpdate,
)

router = APIRouter(route_class=OneHopRoute, prefix="/categories", tags=["taxonomy"])
templates_router = APIRouter(
    route_class=OneHopRoute, prefix="/milestone-templates", tags=["taxonomy"]
)


@router.get("", response_model=Page[CategoryRead], responses=problem_responses(401))
def list_categories(
    session: DbSession, _principal: CurrentPrincipal, page: KeyPageDep
) -> Page[CategoryRead]:
    """The help categories with their clocks, in key order, paged with the total."""
    return taxonomy_service.page_categories(session, page=page)


@router.post(
    "",
    response_model=CategoryRead,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 409),
)
def create_category(
    data: CategoryCreate, session: DbSession, admin: AdminOnly, idem: IdempotencyDep
) -> object:
    """Extend the taxonomy (admins)."""
    if (replayed := idem.replay(data)) is not None:
        return replayed
    category = taxonomy_service.create_category(session, principal=admin, **data.model_dump())
    return idem.store(data, CategoryRead.model_validate(category))


@router.patch(
    "/{key}", response_model=CategoryRead, responses=problem_responses(401, 403, 404, 412, 428)
)
def update_category(
    key: CategoryKey,
    data: CategoryUpdate,
    session: DbSession,
    admin: AdminOnly,
    response: Response,
    if_match: IfMatch = None,
) -> Category:
    """Rename a category or tune its deadline clocks (admins)."""
    check_if_match(if_match, taxonomy_service.get_category(session, key).version)
    category = taxonomy_service.update_category(
        session, principal=admin, key=key, changes=data.model_dump(exclude_unset=True)
    )
    set_etag(response, category.version)
    return category


@templates_router.get(
    "", response_model=Page[MilestoneTemplateRead], responses=problem_responses(401)
)
def list_milestone_templates(
    session: DbSession, _principal: CurrentPrincipal, page_query: PageInQuery, request: Request
) -> Page[MilestoneTemplateRead]:
    """Each category's milestone template, paged with the total (anyone logged in reads them:
    they say what a plan will look like)."""
    page = page_query.page(request)
    return template_service.list_page(
        session, page=page, convert=MilestoneTemplateRead.model_validate
    )


@templates_router.get(
    "/{key}", response_model=MilestoneTemplateRead, responses=problem_responses(401, 404)
)
def read_milestone_template(
    key: CategoryKey, session: DbSession, _principal: CurrentPrincipal, response: Response
) -> MilestoneTemplate:
    template = template_service.get(session, key)
    set_etag(response, template.version)
    return template


@templates_router.patch(
    "/{key}",
    response_model=MilestoneTemplateRead,
    responses=problem_responses(401, 403, 404, 412, 428),
)
def update_milestone_template(
    key: CategoryKey,
    data: MilestoneTemplateUpdate,
    session: DbSession,
    admin: AdminOnly,
    response: Response,
    if_match: IfMatch = None,
) -> MilestoneTemplate:
    """Replace the category's steps (admins). Plans already published keep their milestones;
    requests offered from now on get the new steps."""
    check_if_match(if_match, template_service.get(session, key).version)
    template = template_service.update(session, principal=admin, category_key=key, steps=data.steps)
    set_etag(response, template.version)
    return template
