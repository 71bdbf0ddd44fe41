"""The assignment lifecycle in one table: which move is allowed from which state, by whom.

proposed → offered → accepted → active → completed, or declined / expired / withdrawn /
cancelled on the way. ``OPEN`` states hold a slot of the provider's capacity.
"""

from __future__ import annotations

from app.models import LIVE_ASSIGNMENT_STATUSES, OPEN_ASSIGNMENT_STATUSES
from app.models import AssignmentStatus as S

OPEN = OPEN_ASSIGNMENT_STATUSES
LIVE = LIVE_ASSIGNMENT_STATUSES
TERMINAL = (S.COMPLETED, S.DECLINED, S.EXPIRED, S.WITHDRAWN, S.CANCELLED)

ALLOWED: dict[S, tuple[S, ...]] = {
    S.PROPOSED: (S.OFFERED, S.CANCELLED),
    S.OFFERED: (S.ACCEPTED, S.DECLINED, S.EXPIRED, S.WITHDRAWN, S.CANCELLED),
    S.ACCEPTED: (S.ACTIVE, S.COMPLETED, S.WITHDRAWN, S.CANCELLED),
    S.ACTIVE: (S.COMPLETED, S.WITHDRAWN, S.CANCELLED),
}


def sources_of(target: S) -> tuple[S, ...]:
    """Every state from which ``target`` may be reached."""
    return tuple(src for src, targets in ALLOWED.items() if target in targets)


DECLINE_REASONS = {
    "no_capacity": ("没有余力", "no capacity right now"),
    "outside_expertise": ("不在专业范围", "outside my expertise"),
    "conflict_of_interest": ("存在利益冲突", "conflict of interest"),
    "too_far": ("距离太远", "too far away"),
    "unavailable": ("时间不允许", "unavailable in the period"),
    "other": ("其他", "other"),
}
