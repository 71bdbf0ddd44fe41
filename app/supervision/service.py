"""Supervision (督办): expire unanswered offers, free the offers of providers who paused or
were deactivated, and remind or escalate what runs over its clock through the outbox.

``sweep`` is idempotent: each overdue item is announced once per level and recipient
(``dedupe_key``), so it can run from the worker loop, cron or by hand as often as wanted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.assignments import rematch as rematch_service
from app.assignments import reopen
from app.common import idempotency
from app.common.clock import local_zone, utc_now
from app.common.idsets import in_ids
from app.common.principal import Principal
from app.common.regions import region_clause
from app.models import (
    Assignment,
    AssignmentStatus,
    Notification,
    Provider,
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
    scheduled_milestones: int = 0  # "to be scheduled" steps dated (the batched sweep)
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


@dataclass
class _People:
    """Who an announcement can reach, read once per batch (not once per item: a sweep of
    14k overdue items once read the admins 9k times)."""

    coordinators: Sequence[User]
    admins: Sequence[User]
    of_provider: Mapping[int, list[User]]

    @classmethod
    def read(
        cls, session: Session, coordinators: Sequence[User], items: Sequence[Overdue]
    ) -> _People:
        provider_ids = sorted({i.provider_id for i in items if i.provider_id is not None})
        of_provider: dict[int, list[User]] = defaultdict(list)
        if provider_ids:
            for user in session.scalars(select(User).where(in_ids(User.provider_id, provider_ids))):
                if user.provider_id is not None:
                    of_provider[user.provider_id].append(user)
        admins = session.scalars(
            select(User).where(User.role == Role.ADMIN, User.is_active.is_(True))
        ).all()
        return cls(coordinators, admins, of_provider)

    def recipients(self, item: Overdue) -> list[User]:
        if item.level == 1:
            people = list(escalation_targets(self.coordinators, item.region_code, 1))
            if item.kind in ("offer", "first_follow_up") and item.provider_id is not None:
                people += self.of_provider.get(item.provider_id, [])
            return people
        return escalation_targets(self.coordinators, item.region_code, 2) or list(self.admins)


def _local_due(item: Overdue) -> str:
    """What users read: offers expire at a local time, clocks at the end of a local date."""
    zone = local_zone()
    if item.kind == "offer":
        return f"{item.due_at.astimezone(zone):%Y-%m-%d %H:%M} ({zone.key})"
    return f"{item.due_date.isoformat()} ({zone.key})"


def _dedupe_key(item: Overdue, user: User, channel: str) -> str:
    entity = f"a{item.assignment_id}" if item.assignment_id else f"r{item.request_id}"
    key = f"{item.kind}:{entity}:L{item.level}:u{user.id}"
    return key + ("" if channel == "log" else f":{channel}")


def _notification_row(
    item: Overdue, user: User, channel: str, key: str, now: datetime
) -> dict[str, Any]:
    """One notice on one channel, worded in the user's language."""
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
    return {
        "recipient_user_id": user.id,
        "channel": channel,
        "kind": kind,
        "subject": subject,
        "body": body,
        "payload": {
            "request_id": item.request_id,
            "assignment_id": item.assignment_id,
            "provider_id": item.provider_id,
            "level": item.level,
            "language": templates.language_of(user.language),
        }
        | ({"to": user.email} if channel == "email" else {}),
        "region_code": item.region_code,
        "dedupe_key": key,
        "created_at": now,
    }


def _insert_new(session: Session, rows: list[dict[str, Any]]) -> None:
    """One multi-row INSERT; a key a concurrent sweep wrote meanwhile is skipped, not an
    error (both databases support ``ON CONFLICT DO NOTHING``)."""
    dialect = session.get_bind().dialect.name
    make = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = make(Notification).on_conflict_do_nothing(index_elements=["dedupe_key"])
    session.execute(statement, rows)


def expire_offers(session: Session, items: Iterable[Overdue]) -> list[int]:
    """Offers past their deadline expire, set-based for the whole batch (only those still
    offered: an answer given meanwhile wins); returns their requests, for the next-best
    provider."""
    return reopen.reopen_offers(
        session,
        (i.assignment_id for i in items if i.assignment_id is not None),
        to=AssignmentStatus.EXPIRED,
        action="assignment.expired",
        reason="offer expired",
    )


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
        select(Assignment.id)
        .join(Provider, Provider.id == Assignment.provider_id)
        .where(Assignment.status == AssignmentStatus.OFFERED, _unavailable(on))
        .order_by(Assignment.id)
    )
    if provider_id is not None:
        statement = statement.where(Provider.id == provider_id)
    if limit is not None:
        statement = statement.limit(limit)
    return reopen.reopen_offers(
        session,
        session.scalars(statement).all(),
        to=AssignmentStatus.WITHDRAWN,
        action="assignment.released",
        reason="provider unavailable",
    )


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
    """Write one notice per overdue item, recipient and channel not yet announced: the
    recipients and the keys already written are read once for the whole batch, and the new
    notices go in one INSERT (a batch of 500 items was ~3k statements)."""
    items = list(items)
    people = _People.read(session, coordinators, items)
    planned: dict[str, tuple[Overdue, User, str]] = {}
    for item in items:
        report.overdue[item.kind] = report.overdue.get(item.kind, 0) + 1
        for user in people.recipients(item):
            for channel in user.notify_channels or ["log"]:
                planned.setdefault(_dedupe_key(item, user, channel), (item, user, channel))
    if not planned:
        return
    written = set(
        session.scalars(
            select(Notification.dedupe_key).where(Notification.dedupe_key.in_(list(planned)))
        )
    )
    rows = [
        _notification_row(item, user, channel, key, now)
        for key, (item, user, channel) in planned.items()
        if key not in written
    ]
    if rows:
        _insert_new(session, rows)
    report.notifications += len(rows)


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
