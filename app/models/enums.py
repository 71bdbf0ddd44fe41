"""Closed vocabularies, stored as their string values."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ENTERPRISE = "enterprise"
    EXPERT = "expert"
    PLATFORM = "platform"
    COORDINATOR = "coordinator"
    ADMIN = "admin"


class EnterpriseSize(StrEnum):
    MICRO = "micro"
    SMALL = "small"
    MEDIUM = "medium"


class Tier(StrEnum):
    """Cultivation tier: 创新型中小企业 → 专精特新 → 小巨人 → 单项冠军."""

    NONE = "none"
    INNOVATIVE = "innovative"
    SPECIALISED = "specialised"
    LITTLE_GIANT = "little_giant"
    CHAMPION = "champion"


class CategorySource(StrEnum):
    """Who chose a request's category: the filer, the suggester (to be checked at triage),
    or a coordinator (confirmed or changed at triage)."""

    GIVEN = "given"
    SUGGESTED = "suggested"
    CONFIRMED = "confirmed"


class RequestStatus(StrEnum):
    SUBMITTED = "submitted"
    TRIAGED = "triaged"
    MATCHED = "matched"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    WITHDRAWN = "withdrawn"
    UNRESOLVABLE = "unresolvable"


# A request in one of these wants nothing more: no offer, no plan step, no re-match.
REQUEST_CLOSED = (RequestStatus.RESOLVED, RequestStatus.WITHDRAWN, RequestStatus.UNRESOLVABLE)
# ... and the rest, still open: listed, so SQL can test membership with an index-friendly IN.
REQUEST_OPEN = tuple(s for s in RequestStatus if s not in REQUEST_CLOSED)


class Severity(StrEnum):
    """Ordinary problems are due in 7 days, major ones in 30 (the "13710" rule)."""

    ORDINARY = "ordinary"
    MAJOR = "major"


class Vetting(StrEnum):
    """A self-registered provider is ``pending`` until a coordinator of its region vets it."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class ProviderKind(StrEnum):
    EXPERT = "expert"
    PLATFORM = "platform"


class MatchRunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    PUBLISHED = "published"
    REVERTED = "reverted"


class AssignmentStatus(StrEnum):
    PROPOSED = "proposed"
    OFFERED = "offered"
    ACCEPTED = "accepted"
    ACTIVE = "active"
    COMPLETED = "completed"
    DECLINED = "declined"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"
    CANCELLED = "cancelled"


# Status groups every layer queries by (the moves between states: app.assignments.transitions).
# An open assignment holds a slot of the provider's capacity; a live one is or was worked on.
OPEN_ASSIGNMENT_STATUSES = (
    AssignmentStatus.OFFERED,
    AssignmentStatus.ACCEPTED,
    AssignmentStatus.ACTIVE,
)
LIVE_ASSIGNMENT_STATUSES = (*OPEN_ASSIGNMENT_STATUSES, AssignmentStatus.COMPLETED)


class AssignmentOrigin(StrEnum):
    MATCH_RUN = "match_run"
    MANUAL = "manual"
    REMATCH = "rematch"


class PlanStatus(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    FOLLOW_UP = "follow_up"
    CLOSED = "closed"


class FollowUpKind(StrEnum):
    VISIT = "visit"
    CALL = "call"
    ONLINE = "online"
    NOTE = "note"
