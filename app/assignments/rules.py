"""The hard rules every hand path obeys — judged by the engine itself.

A hand-made offer or a re-assignment is checked by :func:`matching.check_pairs` on a snapshot
built by the same encoder a run uses, so the rules (active and not paused, capacity,
conflict, exclusion, category, region served or remote, minimum score) cannot drift apart
between the solver and the shell. Vetting and the triage gate are the shell's own states and
are checked here first. A coordinator may override only the region or minimum-score rule,
and only with a reason, which is audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

import matching
from app.assignments.encode import MATCHABLE, Scope, snapshot
from app.errors import Conflict
from app.models import HelpRequest, Provider, Vetting

OVERRIDABLE = ("region", "min_score")
MESSAGES = {
    "category": "the provider does not cover the request's category",
    "inactive": "the provider is inactive or paused",
    "capacity": "the provider has no free capacity",
    "region": "the provider does not serve the enterprise's region and offers no remote help",
    "conflict": "the provider declared a conflict of interest with this enterprise",
    "excluded": "this pair is forbidden by an exclusion",
    "min_score": "the pair scores below the minimum score",
}


@dataclass(frozen=True)
class Verdict:
    """A pair that may be offered: its fit, features, and the rules a coordinator overrode."""

    fit: float
    features: dict[str, float]
    overridden: tuple[str, ...]

    def breakdown(self, note: str, reason: str) -> dict[str, Any]:
        out: dict[str, Any] = {"features": self.features, "fit": self.fit}
        if note:
            out["note"] = note
        if self.overridden:
            out["overridden"] = list(self.overridden)
            out["override_reason"] = reason
        return out


def check_offer(
    session: Session,
    *,
    request: HelpRequest,
    provider: Provider,
    override: tuple[str, ...] = (),
    weights: matching.Weights | None = None,
) -> Verdict:
    """409 naming the first rule the pair breaks that was not (or may not be) overridden."""
    if provider.vetting != Vetting.APPROVED:
        raise Conflict(
            f"provider {provider.id} is not vetted ({provider.vetting.value})", field="provider_id"
        )
    if request.status not in MATCHABLE:
        raise Conflict(
            f"the request is {request.status.value}; only triaged requests are offered",
            field="request_id",
        )
    snap = snapshot(
        session, Scope(request_ids=(request.id,)), skilled_only=True, providers=(provider.id,)
    )
    (check,) = matching.check_pairs(snap.problem, [(request.id, provider.id)], weights)
    waived = set(override) & set(OVERRIDABLE)
    for rule in check.broken:
        if rule not in waived:
            raise Conflict(f"{MESSAGES[rule]} (hard rule {rule!r})", field="provider_id", rule=rule)
    return Verdict(check.fit, check.features, tuple(r for r in check.broken if r in waived))
