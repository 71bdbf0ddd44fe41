"""Which response model a principal gets for an assignment: chosen by role, never filtered.

Staff read :class:`AssignmentRead` (the whole explanation, runners-up included); the provider
and the enterprise of the pair read :class:`AssignmentReadForParty`.
"""

from __future__ import annotations

from collections.abc import Iterable

from app.assignments.schemas import AssignmentRead, AssignmentReadForParty
from app.common.principal import Principal
from app.models import Assignment

AssignmentView = AssignmentRead | AssignmentReadForParty


def is_staff(principal: Principal) -> bool:
    return principal.is_admin or principal.is_coordinator


def assignment_view_model(
    principal: Principal,
) -> type[AssignmentRead] | type[AssignmentReadForParty]:
    return AssignmentRead if is_staff(principal) else AssignmentReadForParty


def assignment_view(principal: Principal, assignment: Assignment) -> AssignmentView:
    return assignment_view_model(principal).model_validate(assignment)


def assignment_views(principal: Principal, rows: Iterable[Assignment]) -> list[AssignmentView]:
    return [assignment_view(principal, a) for a in rows]
