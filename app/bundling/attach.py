"""Bundling requests into plans (一企一策) for a whole set of enterprises in a few statements.

A publish attaches tens of thousands of enterprises at once. Doing it one enterprise at a time
(lock, find the plan, link, reload the policy catalogue, recommend, record) cost six queries
each and made publishing quadratic once the ORM evaluated its bulk updates against every
loaded row (NOTES.md). Here every step is one statement or one executemany batch over the
whole set: enterprises locked in id order, missing plans created together, requests linked by
one correlated ``UPDATE``, the catalogue read once, changed plans updated in batches.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, bindparam, case, false, insert, literal, select, update
from sqlalchemy.orm import Session

from app.bundling import milestones, repository, summaries
from app.common.bulk import refresh_planner_statistics
from app.common.clock import today, utc_now
from app.common.idsets import in_ids
from app.common.locking import lock_rows
from app.common.principal import Principal
from app.errors import NotFound
from app.events import service as event_service
from app.models import (
    REQUEST_CLOSED,
    Enterprise,
    HelpRequest,
    Plan,
    PlanStatus,
    Policy,
    RequestStatus,
)
from app.policies.eligibility import Applicant, Catalogue
from app.taxonomy import service as taxonomy_service

BULK_PLANS = 1000  # attaching this many plans at once refreshes the planner statistics
# ... of the columns the statements after the link filter and join by: the new plans, and
# the requests' plan and status (plans found by enterprise, requests by plan).
PLANNER_COLUMNS = {
    "plans": ("id", "enterprise_id", "status"),
    "help_requests": ("plan_id", "status"),
}
REOPENED = (PlanStatus.DRAFT, PlanStatus.FOLLOW_UP)  # attaching work makes these active again
BATCH = 2000


def _table(model: type[Plan] | type[HelpRequest]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)  # one table per model
    return table


def _lock_enterprises(
    session: Session, ids: Sequence[int], *, read: bool = True
) -> dict[int, Applicant]:
    """Locked in id order: concurrent offers to one company queue here instead of both
    creating its plan (unique index) or both bumping its version. Only the columns that
    eligibility and the audit need are read: no ORM object per enterprise. With ``read``
    false only the locks are taken and nothing is returned: a deferred publish needs no
    applicant (~0.05 s of building 3k of them at 10k)."""
    columns = (
        (Enterprise.tier, Enterprise.size, Enterprise.industry_code, Enterprise.region_code)
        if read
        else ()
    )
    statement = (
        select(Enterprise.id, *columns)
        .where(in_ids(Enterprise.id, ids))
        .order_by(Enterprise.id)
        .with_for_update()
    )
    rows = session.execute(statement).all()
    if missing := sorted(set(ids) - {row[0] for row in rows}):
        raise NotFound(f"enterprise {missing[0]} not found")
    return {
        e: Applicant(tier.value, size.value, industry, region)
        for e, tier, size, industry, region in (rows if read else ())
    }


def _open_plans(session: Session, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """enterprise id → its open plan's columns (id, status, recommended_policies, summaries)."""
    rows = session.execute(
        select(
            Plan.enterprise_id,
            Plan.id,
            Plan.status,
            Plan.recommended_policies,
            Plan.summary,
            Plan.summary_en,
            Plan.summary_edited,
        ).where(in_ids(Plan.enterprise_id, ids), Plan.status != PlanStatus.CLOSED)
    )
    return _plan_columns(rows)


def _plan_columns(rows: Iterable[Any]) -> dict[int, dict[str, Any]]:
    return {
        e: {
            "id": p,
            "status": s,
            "recommended_policies": list(r or []),
            "summary": zh,
            "summary_en": en,
            "summary_edited": edited,
        }
        for e, p, s, r, zh, en, edited in rows
    }


def _create_missing(
    session: Session, ids: Sequence[int], plans: dict[int, dict[str, Any]], marked: int | None
) -> set[int]:
    """Insert the plans that do not exist yet (status active; marked for preparation by run
    ``marked`` when given) in one ``INSERT ... SELECT`` over the (locked) enterprises; returns
    their enterprises. One statement with one id list: the multi-row ``VALUES`` it replaced
    spent most of its time in the driver, converting seven bind parameters per plan (0.6 s
    of a 10k publish against 0.06 s in the database). Only the new ids come back: the other
    columns are the constants inserted, and the mark is written with the row rather than by
    a second ``UPDATE`` of every new plan."""
    missing = [e for e in ids if e not in plans]
    if not missing:
        return set()
    table = _table(Plan)
    now = literal(utc_now(), table.c.created_at.type)
    new: dict[str, Any] = {
        "status": PlanStatus.ACTIVE,
        "summary": "",
        "summary_en": "",
        "summary_edited": False,
        "recommended_policies": [],
    }
    source = (
        select(
            Enterprise.id,
            literal(new["status"], table.c.status.type),
            literal(new["summary"], table.c.summary.type),
            literal(new["summary_en"], table.c.summary_en.type),
            false(),
            literal(new["recommended_policies"], table.c.recommended_policies.type),
            literal(1, table.c.version.type),
            literal(marked, table.c.preparation_run_id.type),
            now,
            now,
        )
        .where(in_ids(Enterprise.id, missing))
        .order_by(Enterprise.id)  # plan ids ascend with enterprise ids, as one by one
    )
    columns = (
        "enterprise_id", "status", "summary", "summary_en", "summary_edited",
        "recommended_policies", "version", "preparation_run_id", "created_at", "updated_at",
    )  # fmt: skip
    statement = (
        insert(table).from_select(columns, source).returning(table.c.enterprise_id, table.c.id)
    )
    for enterprise_id, plan_id in session.execute(statement):
        plans[enterprise_id] = {"id": plan_id, **new, "recommended_policies": []}
    return set(missing)


@dataclass(frozen=True)
class StatusMove:
    """Requests whose status moves in the same ``UPDATE`` that links them to their plans
    (publish: ``triaged`` → ``matched``). Written once instead of twice: on PostgreSQL a row
    this transaction already updated also re-runs every foreign-key check when it is updated
    again, so the second ``UPDATE`` cost the row rewrite and three triggers per request.

    The caller holds these requests' row locks and has checked their status (publish reads
    them ``FOR UPDATE``): :func:`attach_many` reports which ones moved, for a last check."""

    request_ids: Sequence[int]
    sources: tuple[RequestStatus, ...]
    to: RequestStatus


def _link_requests(session: Session, ids: Sequence[int], move: StatusMove | None) -> list[int]:
    """Every unsettled request without a plan joins its enterprise's open plan, and the
    requests of ``move`` change status, in one statement; returns the ids ``move`` moved.
    Linking is not an edit a concurrent editor could lose, so it does not bump the request's
    version; a status move does (a concurrent editor's If-Match goes stale).

    A Core statement on the tables, not the ORM's bulk ``UPDATE``: with ``RETURNING`` the ORM
    builds a result row per request it touched (5,333 in a 10k publish, ~10% of the publish's
    Python time); here each row returns one integer, its id if it now has ``move``'s status."""
    requests, plans = _table(HelpRequest), _table(Plan)
    open_plan = (
        select(plans.c.id)
        .where(
            plans.c.enterprise_id == requests.c.enterprise_id,
            plans.c.status != PlanStatus.CLOSED,
        )
        .scalar_subquery()
    )
    linking = (
        in_ids(requests.c.enterprise_id, ids)
        & requests.c.plan_id.is_(None)
        & requests.c.status.not_in(REQUEST_CLOSED)
    )
    statement = update(requests)
    if move is None or not move.request_ids:
        session.execute(statement.where(linking).values(plan_id=open_plan))
        return []
    moving = in_ids(requests.c.id, move.request_ids) & requests.c.status.in_(move.sources)
    rows = session.execute(
        statement.where(linking | moving)
        .values(
            plan_id=case((linking, open_plan), else_=requests.c.plan_id),
            status=case((moving, move.to), else_=requests.c.status),
            version=requests.c.version + case((moving, 1), else_=0),
            updated_at=utc_now(),
        )
        .returning(case((requests.c.status == move.to, requests.c.id)))  # the new status
    ).scalars()
    wanted = set(move.request_ids)
    return sorted(r for r in rows if r is not None and r in wanted)


def _categories(session: Session, owners: Mapping[int, int]) -> dict[int, set[str]]:
    """plan id → the categories of its requests, for the plans ``owners`` maps (plan id →
    its enterprise's id)."""
    found: dict[int, set[str]] = defaultdict(set)
    rows = session.execute(
        select(HelpRequest.plan_id, HelpRequest.category)
        .where(repository.request_of_plans(session, owners))
        .distinct()
    )
    for plan_id, category in rows:
        if plan_id is not None:
            found[plan_id].add(category)
    return found


@dataclass
class Attached:
    """What :func:`attach_many` did: enterprise id → its open plan's id, the requests its
    :class:`StatusMove` moved (sorted), and whether the plans' preparation was deferred."""

    plans: dict[int, int]
    moved: list[int]
    deferred: bool = False


@dataclass(frozen=True)
class Deferral:
    """Prepare the plans later (the worker, :mod:`app.bundling.preparation`) when there are
    more than ``inline_max`` of them, marking each with ``run_id`` (the publishing run)."""

    run_id: int
    inline_max: int


def attach_many(
    session: Session, *, enterprise_ids: Sequence[int], actor: Principal | None
) -> dict[int, int]:
    """Create or update each enterprise's open plan so it bundles all its unsettled requests,
    has the template milestones of each request on offer, recommends the policies it
    qualifies for now and says so in its (generated) summary; returns enterprise id → plan id."""
    return attach_and_move(session, enterprise_ids=enterprise_ids, actor=actor).plans


def attach_and_move(
    session: Session,
    *,
    enterprise_ids: Sequence[int],
    actor: Principal | None,
    move: StatusMove | None = None,
    defer: Deferral | None = None,
) -> Attached:
    """:func:`attach_many`, with ``move`` changing the status of some of those requests in
    the same statement that links them to their plans; with ``defer`` and more plans than
    its ``inline_max``, the plans are created and linked here but only marked for
    preparation (milestones, policies, summaries), which the worker does afterwards."""
    ids = sorted(set(enterprise_ids))
    if not ids:
        return Attached({}, [])
    deferred = defer.run_id if defer is not None and len(ids) > defer.inline_max else None
    enterprises = _lock_enterprises(session, ids, read=deferred is None)
    plans = _open_plans(session, ids)
    created = _create_missing(session, ids, plans, deferred)
    moved = _link_requests(session, ids, move)
    found = {e: plans[e]["id"] for e in ids}
    if deferred is not None:  # the new plans were marked as they were inserted
        _mark_for_preparation(session, [found[e] for e in ids if e not in created], deferred)
        _record_created(session, [found[e] for e in created], actor)
        return Attached(found, moved, deferred=True)
    if len(ids) >= BULK_PLANS:
        # The next statements find requests by plan: with statistics from before these plans
        # existed, the planner's estimates are off by orders of magnitude (a province's
        # publish outlived the statement timeout).
        refresh_planner_statistics(session, list(PLANNER_COLUMNS), PLANNER_COLUMNS)
    prepare(session, ids, enterprises, plans, created, actor)
    return Attached(found, moved)


def _record_created(session: Session, plan_ids: list[int], actor: Principal | None) -> None:
    """What :func:`_change` records for each plan just created, selected from the rows; the
    worker records each plan's update when it prepares it."""
    if not plan_ids:
        return
    event_service.record_selected(
        session,
        actor=actor,
        action="plan.created",
        entity_type="plans",
        rows=select(
            Plan.id,
            Enterprise.region_code,
            event_service.json_value(None),
            event_service.json_of_ids(session, id=Plan.id, enterprise_id=Plan.enterprise_id),
        )
        .join(Enterprise, Enterprise.id == Plan.enterprise_id)
        .where(in_ids(Plan.id, plan_ids))
        .order_by(Plan.enterprise_id),
    )


def _mark_for_preparation(session: Session, plan_ids: list[int], run_id: int) -> None:
    """The durable mark the worker drains, in the publish's own transaction. A plan that was
    in draft or follow-up becomes active here already (as inline preparation would make it):
    it has work again, whether or not its milestones exist yet."""
    if not plan_ids:
        return
    reopened = Plan.status.in_(REOPENED)
    session.execute(
        update(Plan)
        .where(in_ids(Plan.id, plan_ids))
        .values(
            preparation_run_id=run_id,
            status=case((reopened, PlanStatus.ACTIVE), else_=Plan.status),
            version=Plan.version + case((reopened, 1), else_=0),
        )
        .execution_options(synchronize_session=False)
    )


def prepare_enterprises(session: Session, ids: Sequence[int], actor: Principal | None) -> int:
    """Prepare the open plans of these (already locked, id-ordered) enterprises from their
    current state and clear their preparation marks; returns how many plans were prepared.
    The worker's half of a deferred publish: the same :func:`prepare` the inline path runs."""
    ids = sorted(set(ids))
    if not ids:
        return 0
    enterprises = _lock_enterprises(session, ids)
    plans = _open_plans(session, ids)
    # enterprise → plan, the global lock order (app.common.locking), before any milestone
    lock_rows(session, Plan, [plan["id"] for plan in plans.values()])
    session.execute(
        update(Plan)
        .where(in_ids(Plan.enterprise_id, ids), Plan.preparation_run_id.is_not(None))
        .values(preparation_run_id=None)
        .execution_options(synchronize_session=False)
    )
    open_ids = [e for e in ids if e in plans]  # a plan closed meanwhile just loses its mark
    prepare(session, open_ids, enterprises, plans, set(), actor)
    return len(open_ids)


def prepare(
    session: Session,
    ids: Sequence[int],
    enterprises: dict[int, Applicant],
    plans: dict[int, dict[str, Any]],
    created: set[int],
    actor: Principal | None,
) -> None:
    """Template milestones, policy matching and summaries of the enterprises' open plans,
    computed from the current state, written in bulk with one audit event per plan."""
    if not ids:
        return
    owners = {plans[e]["id"]: e for e in ids}  # plan id → enterprise id
    helpers = milestones.helpers(session, owners)
    # Hand over first: the steps generated next already belong to the current provider, so
    # only the older ones need reading.
    milestones.hand_over(session, helpers)
    added = milestones.generate(session, helpers)
    categories = _categories(session, owners)
    catalogue = Catalogue(
        session.scalars(select(Policy).order_by(Policy.id)),
        today(),
        taxonomy_service.labels(session),
    )
    wanted = {
        plans[e]["id"]: catalogue.recommend(enterprises[e], categories.get(plans[e]["id"], set()))
        for e in ids
    }
    texts = summaries.generate(
        session,
        {plans[e]["id"]: wanted[plans[e]["id"]] for e in ids if not plans[e]["summary_edited"]},
        owners,
    )
    changes: list[event_service.Change] = []
    updates: list[dict[str, Any]] = []
    for e in ids:
        plan = plans[e]
        status = PlanStatus.ACTIVE if plan["status"] in REOPENED else plan["status"]
        zh, en = texts.get(plan["id"], (plan["summary"], plan["summary_en"]))
        after = {
            "status": status.value,
            "recommended_policies": wanted[plan["id"]],
            "summary": zh,
            "summary_en": en,
        }
        old = {k: plan[k].value if k == "status" else plan[k] for k in after}
        changed = {k: v for k, v in after.items() if e in created or old.get(k) != v}
        if changed:
            updates.append(
                {
                    "b_id": plan["id"],
                    "b_status": status,
                    **{f"b_{k}": v for k, v in after.items() if k != "status"},
                }
            )
        if added.get(plan["id"]):
            changed["milestones_added"] = added[plan["id"]]
        changes.append(_change(e, plan["id"], enterprises[e], created, old, changed))
    _update_plans(session, updates, utc_now())
    event_service.record_many(session, actor=actor, changes=changes)


def _change(
    enterprise_id: int,
    plan_id: int,
    enterprise: Applicant,
    created: set[int],
    old: dict[str, Any],
    changed: dict[str, Any],
) -> event_service.Change:
    if enterprise_id in created:
        return event_service.Change(
            action="plan.created",
            entity_type="plans",
            entity_id=plan_id,
            region_code=enterprise.region_code,
            after={"id": plan_id, "enterprise_id": enterprise_id, **changed},
        )
    return event_service.Change(
        action="plan.updated",
        entity_type="plans",
        entity_id=plan_id,
        region_code=enterprise.region_code,
        before={k: old.get(k) for k in changed},
        after=changed,
    )


def _update_plans(session: Session, rows: list[dict[str, Any]], now: Any) -> None:
    """Changed plans, executemany by primary key; each bumps its version (If-Match goes stale)."""
    table = _table(Plan)
    statement = (
        update(table)
        .where(table.c.id == bindparam("b_id"))
        .values(
            status=bindparam("b_status"),
            recommended_policies=bindparam("b_recommended_policies"),
            summary=bindparam("b_summary"),
            summary_en=bindparam("b_summary_en"),
            version=table.c.version + 1,
            updated_at=now,
        )
    )
    for start in range(0, len(rows), BATCH):
        session.connection().execute(statement, rows[start : start + BATCH])
