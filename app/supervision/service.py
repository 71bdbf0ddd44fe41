"""Supervision (督办): expire unanswered offers, free the offers of providers who paused or
were deactivated, and remind or escalate what runs over its clock through the outbox.

``sweep`` is idempotent: each overdue item is announced once per level and recipient
(``dedupe_key``), so it can run from the worker loop, cron or by hand as often as wanted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.assignments import offers
from app.assignments import rematch as rematch_service
from app.assignments.lifecycle import move
from app.common import idempotency
from app.common.clock import local_zone, utc_now
from app.common.principal import Principal
from app.enterprises.repository import region_clause
from app.models import (
    Assignment,
    AssignmentStatus,
    HelpRequest,
    Notification,
    Provider,
    RequestStatus,
    Role,
    User,
)
from app.notifications import templates
from app.supervision import clocks
from app.supervision.clocks import Overdue


@dataclass
class SweepReport:
    expired_offers: int = 0
    released_offers: int = 0
    rematched_offers: int = 0
    overdue: dict[str, int] = field(default_factory=dict)
    notifications: int = 0
    transactions: int = 0  # committed batches (the batched sweep); 0 for the one-transaction one
    longest_transaction_seconds: float = 0.0
    seconds: float = 0.0


def coordinators(session: Session) -> Sequence[User]:
    return session.scalars(
        select(User)
        .where(User.role == Role.COORDINATOR, User.is_active.is_(True))
        .order_by(User.id)
    ).all()


def escalation_targets(coordinators: Iterable[User], region_code: str, level: int) -> list[User]:
    """Level 1: the most local coordinators of the region. Level 2: those of the enclosing
    region (a shorter covering prefix), so a county's overdue item reaches the city or province."""
    covering = [
        (max(len(p) for p in c.region_prefixes if region_code.startswith(p)), c)
        for c in coordinators
        if any(region_code.startswith(p) for p in c.region_prefixes)
    ]
    if not covering:
        return []
    local = max(depth for depth, _ in covering)
    if level == 1:
        return [c for depth, c in covering if depth == local]
    return [c for depth, c in covering if depth < local]


def _admins(session: Session) -> Sequence[User]:
    return session.scalars(
        select(User).where(User.role == Role.ADMIN, User.is_active.is_(True))
    ).all()


def _provider_users(session: Session, provider_id: int | None) -> Sequence[User]:
    if provider_id is None:
        return []
    return session.scalars(select(User).where(User.provider_id == provider_id)).all()


def _recipients(session: Session, item: Overdue, coordinators: Sequence[User]) -> list[User]:
    if item.level == 1:
        people = list(escalation_targets(coordinators, item.region_code, 1))
        if item.kind in ("offer", "first_follow_up"):
            people += list(_provider_users(session, item.provider_id))
        return people
    return escalation_targets(coordinators, item.region_code, 2) or list(_admins(session))


def _notify(session: Session, item: Overdue, user: User, now: datetime) -> int:
    """One notice per channel the user chose, worded in their language; 0 for each that a
    concurrent or earlier sweep already wrote."""
    return sum(
        _notify_on(session, item, user, channel, now) for channel in user.notify_channels or ["log"]
    )


def _local_due(item: Overdue) -> str:
    """What users read: offers expire at a local time, clocks at the end of a local date."""
    zone = local_zone()
    if item.kind == "offer":
        return f"{item.due_at.astimezone(zone):%Y-%m-%d %H:%M} ({zone.key})"
    return f"{item.due_date.isoformat()} ({zone.key})"


def _notify_on(session: Session, item: Overdue, user: User, channel: str, now: datetime) -> bool:
    entity = f"a{item.assignment_id}" if item.assignment_id else f"r{item.request_id}"
    key = f"{item.kind}:{entity}:L{item.level}:u{user.id}"
    key += "" if channel == "log" else f":{channel}"
    if session.scalar(select(Notification.id).where(Notification.dedupe_key == key)):
        return False
    kind = f"overdue.{item.kind}"
    subject, body = templates.render(
        kind,
        user.language,
        {
            "request_id": item.request_id,
            "due_at": _local_due(item),
            "overdue_hours": item.overdue_hours,
        },
        level=item.level,
    )
    notification = Notification(
        recipient_user_id=user.id,
        channel=channel,
        kind=kind,
        subject=subject,
        body=body,
        payload={
            "request_id": item.request_id,
            "assignment_id": item.assignment_id,
            "provider_id": item.provider_id,
            "level": item.level,
            "language": templates.language_of(user.language),
        }
        | ({"to": user.email} if channel == "email" else {}),
        region_code=item.region_code,
        dedupe_key=key,
        created_at=now,
    )
    try:
        with session.begin_nested():  # a concurrent sweep may have just written the same key
            session.add(notification)
            session.flush()
    except IntegrityError:
        return False
    return True


def _reopen(
    session: Session, assignment: Assignment, *, to: AssignmentStatus, action: str, reason: str
) -> int:
    move(session, assignment, to=to, actor=None, action=action)
    offers.exclude_pair(
        session,
        request_id=assignment.request_id,
        provider_id=assignment.provider_id,
        reason=reason,
        actor=None,
    )
    request = session.get(HelpRequest, assignment.request_id)
    if request is not None and request.status == RequestStatus.MATCHED:
        request.status = RequestStatus.TRIAGED
        session.flush()
    return assignment.request_id


def expire_offers(session: Session, items: Iterable[Overdue]) -> list[int]:
    """Offers past their deadline expire; their requests go to the next-best provider."""
    reopened = []
    for item in items:
        assignment = session.get(Assignment, item.assignment_id)
        if assignment is not None and assignment.status == AssignmentStatus.OFFERED:
            reopened.append(
                _reopen(
                    session,
                    assignment,
                    to=AssignmentStatus.EXPIRED,
                    action="assignment.expired",
                    reason="offer expired",
                )
            )
    return reopened


def _unavailable(on: date) -> ColumnElement[bool]:
    paused = (
        (Provider.paused_from_date.is_not(None) | Provider.paused_until_date.is_not(None))
        & (Provider.paused_from_date.is_(None) | (Provider.paused_from_date <= on))
        & (Provider.paused_until_date.is_(None) | (Provider.paused_until_date >= on))
    )
    return or_(Provider.active.is_(False), paused)


def release_offers_of_unavailable(
    session: Session, on: date, provider_id: int | None = None, *, limit: int | None = None
) -> list[int]:
    """Offers held by providers who are inactive or paused today are withdrawn."""
    statement = (
        select(Assignment)
        .join(Provider, Provider.id == Assignment.provider_id)
        .where(Assignment.status == AssignmentStatus.OFFERED, _unavailable(on))
        .order_by(Assignment.id)
    )
    if provider_id is not None:
        statement = statement.where(Provider.id == provider_id)
    if limit is not None:
        statement = statement.limit(limit)
    return [
        _reopen(
            session,
            a,
            to=AssignmentStatus.WITHDRAWN,
            action="assignment.released",
            reason="provider unavailable",
        )
        for a in session.scalars(statement).all()
    ]


def rematch_after(session: Session, request_ids: list[int], actor: Principal | None) -> int:
    return len(rematch_service.rematch_requests(session, request_ids=request_ids, actor=actor))


def sweep(session: Session, *, now: datetime | None = None) -> SweepReport:
    now = now or utc_now()
    report = SweepReport()
    late_offers = list(clocks.overdue_offers(session, now))
    people = coordinators(session)
    announce(session, late_offers, people, now, report)
    expired = expire_offers(session, late_offers)
    released = release_offers_of_unavailable(session, now.date())
    report.expired_offers, report.released_offers = len(expired), len(released)
    report.rematched_offers = rematch_after(session, expired + released, None)
    items = [
        *clocks.overdue_first_follow_ups(session, now),
        *clocks.overdue_requests(session, now),
    ]
    announce(session, items, people, now, report)
    idempotency.purge_expired(session, now=now)  # one set-based DELETE of keys past 24 h
    return report


def announce(
    session: Session,
    items: Iterable[Overdue],
    coordinators: Sequence[User],
    now: datetime,
    report: SweepReport,
) -> None:
    for item in items:
        report.overdue[item.kind] = report.overdue.get(item.kind, 0) + 1
        for user in _recipients(session, item, coordinators):
            report.notifications += _notify(session, item, user, now)


def notifications_for(session: Session, *, principal: Principal) -> Sequence[Notification]:
    """Your reminders; coordinators also those of their regions; admins all (newest first)."""
    statement = select(Notification).order_by(Notification.id.desc()).limit(500)
    mine = Notification.recipient_user_id == principal.user_id
    if principal.is_coordinator:
        statement = statement.where(
            or_(mine, region_clause(Notification.region_code, principal.region_prefixes))
        )
    elif not principal.is_admin:
        statement = statement.where(mine)
    return session.scalars(statement).all()
