"""``GET /exports/{kind}``: the lists as CSV or XLSX files, same filters, same scoping."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse

from app.assignments.repository import AssignmentFilter
from app.assignments.router import assignment_filter
from app.common.schemas import problem_responses
from app.deps import CurrentPrincipal, DbSession, OneHopRoute, Staff
from app.exports import service as export_service
from app.exports.negotiation import FormatDep, LangDep
from app.exports.service import Export
from app.exports.writers import MEDIA_TYPES, Format, chunks
from app.models import PlanStatus
from app.providers.repository import ProviderFilter
from app.providers.router import provider_filter
from app.requests.repository import RequestFilter
from app.requests.router import request_filter
from app.stats.repository import StatsFilter
from app.stats.router import stats_filter
from app.stats.schemas import GroupBy

router = APIRouter(route_class=OneHopRoute, prefix="/exports", tags=["exports"])

FILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The file, streamed (UTF-8 with BOM for CSV).",
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            MEDIA_TYPES[Format.XLSX]: {"schema": {"type": "string", "format": "binary"}},
        },
    },
    **problem_responses(401, 403, 406, 422),
}


def _response(export: Export) -> StreamingResponse:
    size = export.file.seek(0, 2)
    export.file.seek(0)
    return StreamingResponse(
        chunks(export.file),
        media_type=MEDIA_TYPES[export.fmt],
        headers={
            "Content-Disposition": f'attachment; filename="{export.filename}"; '
            f"filename*=UTF-8''{quote(export.filename)}",
            "Content-Length": str(size),
        },
    )


@router.get("/requests", response_class=StreamingResponse, responses=FILE_RESPONSES)
def export_requests(
    session: DbSession,
    principal: CurrentPrincipal,
    filters: Annotated[RequestFilter, Depends(request_filter)],
    fmt: FormatDep,
    lang: LangDep,
) -> StreamingResponse:
    """Every help request the caller may see that matches the list's filters."""
    return _response(
        export_service.export_requests(
            session, principal=principal, filters=filters, fmt=fmt, lang=lang
        )
    )


@router.get("/assignments", response_class=StreamingResponse, responses=FILE_RESPONSES)
def export_assignments(
    session: DbSession,
    principal: CurrentPrincipal,
    filters: Annotated[AssignmentFilter, Depends(assignment_filter)],
    fmt: FormatDep,
    lang: LangDep,
) -> StreamingResponse:
    return _response(
        export_service.export_assignments(
            session, principal=principal, filters=filters, fmt=fmt, lang=lang
        )
    )


@router.get("/plans", response_class=StreamingResponse, responses=FILE_RESPONSES)
def export_plans(
    session: DbSession,
    principal: CurrentPrincipal,
    fmt: FormatDep,
    lang: LangDep,
    status: PlanStatus | None = None,
) -> StreamingResponse:
    return _response(
        export_service.export_plans(session, principal=principal, status=status, fmt=fmt, lang=lang)
    )


@router.get("/providers", response_class=StreamingResponse, responses=FILE_RESPONSES)
def export_providers(
    session: DbSession,
    principal: CurrentPrincipal,
    filters: Annotated[ProviderFilter, Depends(provider_filter)],
    fmt: FormatDep,
    lang: LangDep,
) -> StreamingResponse:
    return _response(
        export_service.export_providers(
            session, principal=principal, filters=filters, fmt=fmt, lang=lang
        )
    )


@router.get("/stats", response_class=StreamingResponse, responses=FILE_RESPONSES)
def export_stats(
    session: DbSession,
    principal: Staff,
    filters: Annotated[StatsFilter, Depends(stats_filter)],
    fmt: FormatDep,
    lang: LangDep,
    group_by: GroupBy | None = None,
) -> StreamingResponse:
    """``GET /stats`` as a table: the total, then one row per group."""
    return _response(
        export_service.export_stats(
            session, principal=principal, filters=filters, group_by=group_by, fmt=fmt, lang=lang
        )
    )
