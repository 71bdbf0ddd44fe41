from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status

from app.common.concurrency import check_if_match, set_etag
from app.common.pagination import PageDep, PageInQuery
from app.common.schemas import Page, problem_responses
from app.common.types import RegionPrefix
from app.deps import DbSession, IdempotencyDep, OneHopRoute, SettingsDep, Staff
from app.match_runs import publishing, repository
from app.match_runs import service as match_run_service
from app.match_runs.schemas import (
    AdviceRead,
    ChangeKind,
    MatchRunCreate,
    MatchRunDiff,
    MatchRunRead,
    PublishResult,
    RevertResult,
)
from app.models import MatchRun, MatchRunStatus

router = APIRouter(route_class=OneHopRoute, prefix="/match-runs", tags=["match runs"])
ACTION_ERRORS = problem_responses(401, 403, 404, 409, 412)
IfMatch = Annotated[str | None, Header(description="The run's ETag; 412 when it is stale")]


def get_run(run_id: int, session: DbSession, principal: Staff) -> MatchRun:
    return match_run_service.get(session, principal=principal, run_id=run_id)


CurrentRun = Annotated[MatchRun, Depends(get_run)]


async def run_filter(
    status: MatchRunStatus | None = None,
    region: Annotated[RegionPrefix | None, Query()] = None,
) -> repository.MatchRunFilter:
    return repository.MatchRunFilter(status=status, region=region)


@router.post(
    "",
    response_model=MatchRunRead,
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(401, 403, 409, 422),
)
def trigger_run(
    data: MatchRunCreate,
    session: DbSession,
    principal: Staff,
    idem: IdempotencyDep,
    request: Request,
    response: Response,
) -> object:
    """Queue a match run for a scope; a worker computes it (poll the run for progress)."""
    if (replayed := idem.replay(data)) is not None:
        return replayed
    run = match_run_service.create(session, principal=principal, data=data)
    response.headers["Location"] = request.app.url_path_for("read_run", run_id=run.id)
    return idem.store(data, MatchRunRead.model_validate(run), status_code=202)


@router.get("", response_model=Page[MatchRunRead], responses=problem_responses(401, 403))
def list_runs(
    session: DbSession,
    principal: Staff,
    page: PageDep,
    filters: Annotated[repository.MatchRunFilter, Depends(run_filter)],
) -> Page[MatchRunRead]:
    return match_run_service.list_(session, principal=principal, filters=filters, page=page)


@router.get("/{run_id}", response_model=MatchRunRead, responses=problem_responses(401, 403, 404))
def read_run(run_id: int, session: DbSession, principal: Staff, response: Response) -> MatchRunRead:
    """Status, stage and progress; statistics and supply shortages once it has finished;
    once published, how many of its plans the worker has yet to prepare."""
    # Loaded here, not through ``CurrentRun``: a synchronous dependency is a worker-thread hop
    # of its own, and a read needs only the endpoint's (``OneHopRoute``).
    run = match_run_service.get(session, principal=principal, run_id=run_id)
    set_etag(response, run.version)
    return match_run_service.read(session, run)


@router.get(
    "/{run_id}/diff", response_model=MatchRunDiff, responses=problem_responses(401, 403, 404, 409)
)
def diff_run(
    run: CurrentRun, session: DbSession, page: PageDep, kind: ChangeKind | None = None
) -> MatchRunDiff:
    """Per request decided: live provider against proposed one (new/same/changed/dropped)."""
    return match_run_service.diff(session, run=run, kind=kind, page=page)


@router.get(
    "/{run_id}/advice",
    response_model=Page[AdviceRead],
    responses=problem_responses(401, 403, 404, 409),
)
def run_advice(
    run: CurrentRun, session: DbSession, principal: Staff, page_query: PageInQuery, request: Request
) -> Page[AdviceRead]:
    """Where one more unit of capacity would help most, per category × region (recruiting)."""
    page = page_query.page(request)
    return match_run_service.advice(session, principal=principal, run=run, page=page)


@router.post("/{run_id}/publish", response_model=PublishResult, responses=ACTION_ERRORS)
def publish_run(
    run: CurrentRun,
    session: DbSession,
    principal: Staff,
    settings: SettingsDep,
    if_match: IfMatch = None,
) -> PublishResult:
    """Offer every proposal at once, or nothing (409 naming the pairs that no longer fit).
    A large draft's plans are prepared by the worker after the commit (see the run's
    ``plans_awaiting_preparation``)."""
    check_if_match(if_match, run.version, required=False)
    done = publishing.publish(
        session, principal=principal, run=run, inline_max=settings.plan_preparation_inline_max
    )
    result = PublishResult.model_validate(done)
    result.run.plans_awaiting_preparation = (
        result.run.stats.plans_to_prepare if result.run.stats else 0
    )
    return result


@router.post("/{run_id}/revert", response_model=RevertResult, responses=ACTION_ERRORS)
def revert_run(
    run: CurrentRun, session: DbSession, principal: Staff, if_match: IfMatch = None
) -> RevertResult:
    """Withdraw the run's offers nobody accepted yet; accepted ones stay and are listed."""
    check_if_match(if_match, run.version, required=False)
    done = publishing.revert(session, principal=principal, run=run)
    return RevertResult.model_validate(done)
