"""Use cases on help requests: file, edit, triage, withdraw. Services flush, never commit."""

from __future__ import annotations

from functools import partial
from typing import Any

from sqlalchemy import CursorResult, Select, bindparam, func, insert, select
from sqlalchemy import update as sql_update
from sqlalchemy.orm import Session

from app.assignments import offers
from app.assignments import unmatched as unmatched_store
from app.assignments.transitions import OPEN
from app.bundling import service as bundling
from app.common.clock import today, utc_now
from app.common.locking import lock_request_path
from app.common.pagination import PageParams, paginate_shaped, schema_columns
from app.common.principal import Principal
from app.common.schemas import Page
from app.common.shapes import BuiltOnce, Param, bound
from app.enterprises import service as enterprise_service
from app.enterprises.repository import region_of
from app.errors import Conflict, Forbidden, InvalidInput, NotFound
from app.events import service as event_service
from app.models import (
    REQUEST_CLOSED,
    REQUEST_OPEN,
    Assignment,
    AssignmentStatus,
    Category,
    CategorySource,
    HelpRequest,
    RequestStatus,
    table_of,
)
from app.requests import repository, suggestions
from app.requests.schemas import (
    HelpRequestCreate,
    HelpRequestDetail,
    HelpRequestRead,
    HelpRequestUpdate,
)
from app.taxonomy import service as taxonomy_service

#: Statuses that follow a team's seats (offers.team_status) when its size changes.
TEAM_FOLLOWS_SEATS = (RequestStatus.TRIAGED, RequestStatus.MATCHED, RequestStatus.IN_PROGRESS)
EDITABLE_BY_ENTERPRISE = (RequestStatus.SUBMITTED, RequestStatus.TRIAGED)


def get(session: Session, *, principal: Principal, request_id: int) -> HelpRequest:
    found = session.scalar(repository.visible_to(principal).where(HelpRequest.id == request_id))
    if found is None:
        raise NotFound(f"help request {request_id} not found")
    return found


#: What a request's page reads of the request: its read schema's columns, as rows.
_DETAIL_COLUMNS = schema_columns(HelpRequestRead, HelpRequest)


_DETAILS: BuiltOnce[Select[Any]] = BuiltOnce()


def _detail_statement(principal: Principal) -> Select[Any]:
    """``detail``'s statement for callers of ``principal``'s scope shape, with bound values
    (``principal.scope_params()`` and ``request_id``)."""
    scoped = repository.visible_to(principal, bound).with_only_columns(*_DETAIL_COLUMNS)
    one = scoped.where(HelpRequest.id == bindparam("request_id"))
    return unmatched_store.with_latest(one, HelpRequest.id)


def detail(session: Session, *, principal: Principal, request_id: int) -> HelpRequestDetail:
    """The request as its reader may see it (404 as ``get``), with its latest unmatched
    reasons; only staff see which other requests took the capacity.

    One statement read as column rows (``unmatched_store.with_latest``), not the entity and
    then its reasons: the response is built from columns, and an ORM entity's loading
    costs more CPU than the row it is made of. The statement is built once per scope shape
    (``app.common.shapes``) and run on the session's connection: building it and its cache
    key, and the ORM's execution of plain columns, were about a third of the CPU the read
    cost in its worker thread.
    """
    statement = _DETAILS.get(principal.scope_shape, partial(_detail_statement, principal))
    values = {**principal.scope_params(), "request_id": request_id}
    rows = session.connection().execute(statement, values).mappings().all()
    if not rows:
        raise NotFound(f"help request {request_id} not found")
    reasons = unmatched_store.joined_reasons(rows)
    if not (principal.is_admin or principal.is_coordinator):
        reasons = [unmatched_store.for_enterprise(reason) for reason in reasons]
    return HelpRequestDetail.model_validate({**rows[0], "unmatched": reasons})


def list_(
    session: Session, *, principal: Principal, filters: repository.RequestFilter, page: PageParams
) -> Page[HelpRequestRead]:
    def build(param: Param) -> Select[Any]:
        return repository.filtered(repository.visible_to(principal, param), filters, param)

    columns = schema_columns(HelpRequestRead, HelpRequest)
    convert = HelpRequestRead.model_validate
    return paginate_shaped(
        session, principal, filters, build, HelpRequest.id, page, convert, columns=columns
    )


def _target_region(
    session: Session, principal: Principal, enterprise_id: int | None
) -> tuple[int, str]:
    """The enterprise a request is filed for, and its region: all filing needs of it."""
    if principal.is_enterprise:
        if enterprise_id not in (None, principal.enterprise_id):
            raise Forbidden("enterprises file requests for themselves only", field="enterprise_id")
        enterprise_id = principal.enterprise_id
    if enterprise_id is None:
        raise InvalidInput(
            "enterprise_id is required when staff file a request", field="enterprise_id"
        )
    region = enterprise_service.region_of_visible(
        session, principal=principal, enterprise_id=enterprise_id
    )
    return enterprise_id, region


def check_wanted_by(value: Any) -> None:
    """Also run by request imports: one rule for the API and the files."""
    if value is not None and value < today():
        raise InvalidInput("wanted_by_date is in the past", field="wanted_by_date")


def _extras(session: Session, primary: str, extra: list[str]) -> list[str]:
    """Known, distinct secondary categories other than the primary, in the order given."""
    taxonomy_service.ensure_known(session, extra, field="extra_categories")
    return [c for i, c in enumerate(extra) if c != primary and c not in extra[:i]]


# Built once: building a statement and its cache key cost more CPU than running it.
_DEFAULT_SEVERITY = select(Category.default_severity).where(Category.key == bindparam("key"))


def create(session: Session, *, principal: Principal, data: HelpRequestCreate) -> HelpRequestRead:
    """File a request; without a category it goes under the top suggestion for its text,
    marked ``suggested`` so that triage checks it."""
    enterprise_id, region_code = _target_region(session, principal, data.enterprise_id)
    check_wanted_by(data.wanted_by_date)
    source = CategorySource.GIVEN
    if data.category is None:
        primary, suggested = suggestions.primary_and_extra(
            session, f"{data.title}\n{data.description}"
        )
        source = CategorySource.SUGGESTED
    else:
        primary, suggested = data.category, []
    # the one column of the category it needs (read anyway), its absence the given one's 422
    default_severity = session.connection().scalar(_DEFAULT_SEVERITY, {"key": primary})
    if default_severity is None:
        taxonomy_service.ensure_known(session, [primary], field="category")  # 422
    extra = _extras(
        session, primary, suggested if data.extra_categories is None else data.extra_categories
    )
    assert default_severity is not None  # known: checked above or suggested from the taxonomy
    values = {
        **data.model_dump(exclude={"enterprise_id", "severity", "category", "extra_categories"}),
        "category": primary,
        "category_source": source,
        "extra_categories": extra,
        "enterprise_id": enterprise_id,
        "severity": data.severity or default_severity,
        "status": RequestStatus.SUBMITTED,
    }
    request = _insert(session, values)
    event_service.record_change(
        session,
        actor=principal,
        change=event_service.Change(
            action="request.submitted",
            entity_type=HelpRequest.__tablename__,
            entity_id=request["id"],
            region_code=region_code,
            after=event_service.snapshot_of(HelpRequest, request),
        ),
    )
    return HelpRequestRead.model_validate(request)


# Built once, as ``_DEFAULT_SEVERITY``; every column comes back, for the event's snapshot.
_INSERT = insert(table_of(HelpRequest)).returning(*table_of(HelpRequest).c)


def _insert(session: Session, values: dict[str, Any]) -> dict[str, Any]:
    """Insert a new request by a Core statement; returns its columns by key.

    Not the ORM's unit of work, whose flush of the one new object was about a third of a
    filing's CPU. The columns' own defaults apply as they do in a flush (``version`` 1,
    ``created_at`` and ``updated_at``), and the values sent are what the caller gets back, as
    a flushed object holds them (a timestamp read back from PostgreSQL would carry the
    session's time zone); the database's answer fills in the rest (``id``).
    """
    result = session.execute(_INSERT, values)
    returned = result.one()._asdict()
    assert isinstance(result, CursorResult)  # an INSERT's
    sent = result.last_inserted_params()
    assert not isinstance(sent, list)  # one row, not an executemany
    return {**returned, **sent}


def _ensure_may_edit(session: Session, principal: Principal, request: HelpRequest) -> None:
    if principal.is_enterprise and principal.enterprise_id == request.enterprise_id:
        if request.status not in EDITABLE_BY_ENTERPRISE:
            raise Conflict(
                f"a request that is {request.status.value} can no longer be edited by the enterprise"
            )
        return
    if principal.covers_region(region_of(session, request)):
        if request.status in REQUEST_CLOSED:
            raise Conflict(f"the request is {request.status.value}")
        return
    raise Forbidden("only the enterprise or the coordinators of its region may change this request")


def update(
    session: Session, *, principal: Principal, request: HelpRequest, data: HelpRequestUpdate
) -> HelpRequest:
    _ensure_may_edit(session, principal, request)
    changes = data.model_dump(exclude_unset=True)
    if changes.get("category"):
        taxonomy_service.ensure_known(session, [changes["category"]], field="category")
        changes["category_source"] = (
            CategorySource.GIVEN if principal.is_enterprise else CategorySource.CONFIRMED
        )
    primary = changes.get("category") or request.category
    if changes.get("extra_categories") is not None:
        changes["extra_categories"] = _extras(session, primary, changes["extra_categories"])
    elif changes.get("category"):
        changes["extra_categories"] = [c for c in request.extra_categories if c != primary]
    if "wanted_by_date" in changes:
        check_wanted_by(changes["wanted_by_date"])
    if changes.get("providers_wanted") is not None:
        _check_team_size(session, request, changes["providers_wanted"])

    before = event_service.snapshot(request)
    for key, value in changes.items():
        if value is not None or key == "wanted_by_date":
            setattr(request, key, value)
    session.flush()
    if changes.get("providers_wanted") is not None and request.status in TEAM_FOLLOWS_SEATS:
        # a new empty seat makes it matchable again; a smaller team may now be complete
        request.status = offers.team_status(session, request)
        session.flush()
    event_service.record(
        session,
        actor=principal,
        action="request.updated",
        entity=request,
        region_code=region_of(session, request),
        before=before,
    )
    return request


def _check_team_size(session: Session, request: HelpRequest, wanted: int) -> None:
    """A team cannot shrink below the providers already offered or working on it (decline
    or withdraw one first): the request would hold more providers than it asks for."""
    members = session.scalar(
        select(func.count())
        .select_from(Assignment)
        .where(Assignment.request_id == request.id, Assignment.status.in_(OPEN))
    )
    if members and wanted < members:
        raise Conflict(
            f"request {request.id} already has {members} open assignments; "
            f"providers_wanted cannot go below that",
            field="providers_wanted",
        )


def _transition(
    session: Session,
    *,
    principal: Principal,
    request: HelpRequest,
    to: RequestStatus,
    allowed_from: tuple[RequestStatus, ...],
    action: str,
) -> HelpRequest:
    if request.status not in allowed_from:
        raise Conflict(
            f"cannot move a {request.status.value} request to {to.value}", field="status"
        )
    before = event_service.snapshot(request)
    request.status = to
    session.flush()
    event_service.record(
        session,
        actor=principal,
        action=action,
        entity=request,
        region_code=region_of(session, request),
        before=before,
    )
    return request


def triage(
    session: Session, *, principal: Principal, request: HelpRequest, data: HelpRequestUpdate
) -> HelpRequest:
    """A coordinator checks category, urgency and fields, and releases it for matching."""
    if not principal.covers_region(region_of(session, request)):
        raise Forbidden("only coordinators of the enterprise's region triage its requests")
    update(session, principal=principal, request=request, data=data)
    request.category_source = CategorySource.CONFIRMED  # checked by a coordinator, kept or changed
    return _transition(
        session,
        principal=principal,
        request=request,
        to=RequestStatus.TRIAGED,
        allowed_from=(RequestStatus.SUBMITTED,),
        action="request.triaged",
    )


def _withdraw_assignments(session: Session, request: HelpRequest) -> None:
    """Free the provider slots a withdrawn or settled request was holding."""
    session.execute(
        sql_update(Assignment)
        .where(
            Assignment.request_id == request.id,
            Assignment.status.in_((AssignmentStatus.PROPOSED, *OPEN)),
        )
        .values(
            status=AssignmentStatus.WITHDRAWN, version=Assignment.version + 1, updated_at=utc_now()
        )
        .execution_options(synchronize_session=False)
    )


def _settle(
    session: Session, *, principal: Principal, request: HelpRequest, to: RequestStatus, action: str
) -> HelpRequest:
    # enterprise → plan → request → its assignments, the global order (common/locking)
    lock_request_path(
        session, enterprise_id=request.enterprise_id, plan_id=request.plan_id, request_id=request.id
    )
    _transition(
        session,
        principal=principal,
        request=request,
        to=to,
        allowed_from=REQUEST_OPEN,
        action=action,
    )
    _withdraw_assignments(session, request)
    bundling.refresh_status(session, request.plan_id, principal)
    return request


def withdraw(session: Session, *, principal: Principal, request: HelpRequest) -> HelpRequest:
    own = principal.is_enterprise and principal.enterprise_id == request.enterprise_id
    if not (own or principal.covers_region(region_of(session, request))):
        raise Forbidden("only the enterprise or its coordinators may withdraw this request")
    return _settle(
        session,
        principal=principal,
        request=request,
        to=RequestStatus.WITHDRAWN,
        action="request.withdrawn",
    )


def declare_unresolvable(
    session: Session, *, principal: Principal, request: HelpRequest
) -> HelpRequest:
    """A coordinator settles a request nobody can solve, so its plan can close."""
    if not principal.covers_region(region_of(session, request)):
        raise Forbidden("only coordinators of the enterprise's region settle its requests")
    return _settle(
        session,
        principal=principal,
        request=request,
        to=RequestStatus.UNRESOLVABLE,
        action="request.unresolvable",
    )
