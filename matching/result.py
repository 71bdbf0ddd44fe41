"""What a match run returns: assignments with explanations, runners-up, reasons, stats.

Everything is keyed by the caller's ids (never by matrix indices) and frozen; collections
are tuples sorted by request id so that equal inputs give equal, comparable results.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from matching.explaining.advice import Advice
from matching.problem import Id
from matching.scoring.text import TextCache
from matching.scoring.weights import Weights

__all__ = [
    "Assignment",
    "Candidate",
    "Explanation",
    "MatchResult",
    "Reason",
    "Stats",
    "Unmatched",
]


class Reason(StrEnum):
    """Why a request is unmatched: the hard rule that removed its last candidates, or
    :attr:`CAPACITY_TAKEN` when it had candidates whose slots went to other requests."""

    CATEGORY = "category"
    INACTIVE = "inactive"
    CAPACITY = "capacity"
    REGION = "region"
    CONFLICT = "conflict"
    EXCLUDED = "excluded"
    MIN_SCORE = "min_score"
    CAPACITY_TAKEN = "capacity_taken"


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why a pair scores what it scores.

    Attributes
    ----------
    features : Mapping[str, float]
        The five feature values in [0, 1] (:data:`matching.scoring.weights.FEATURES`).
    contributions : Mapping[str, float]
        ``priority × normalised weight × feature``; they sum to the pair's ``score``.
    priority : float
        Multiplier from the request's urgency and cultivation tier (>= 1).
    slot_multiplier : float
        Fairness factor of the provider slot the pair occupies (1 without fairness).
    reason_zh, reason_en : str
        One line, e.g. ``"技能匹配(3级)·同县·行业C17"`` / ``"skill level 3 · same county ·
        industry C17"``.
    """

    features: Mapping[str, float]
    contributions: Mapping[str, float]
    priority: float
    slot_multiplier: float
    reason_zh: str
    reason_en: str


@dataclass(frozen=True, slots=True)
class Assignment:
    """A chosen pair. ``gain = score × explanation.slot_multiplier``.

    ``pinned`` is True for pairs kept as given rather than decided by this run: the
    problem's pins, and the pairs a :func:`matching.rematch` keeps fixed.
    """

    request: Id
    provider: Id
    score: float
    gain: float
    pinned: bool
    explanation: Explanation


@dataclass(frozen=True, slots=True)
class Candidate:
    """A scored candidate provider of a request (runners-up and :func:`matching.rank`)."""

    provider: Id
    score: float
    fit: float
    features: Mapping[str, float]


@dataclass(frozen=True, slots=True)
class Unmatched:
    """An open request left without a provider, and why.

    ``removed`` counts providers removed per hard rule (funnel order, each provider
    attributed to the first rule that removed it). ``taken_by`` names the requests holding
    the slots of its candidates when ``reason`` is :attr:`Reason.CAPACITY_TAKEN`.
    """

    request: Id
    reason: Reason
    removed: Mapping[str, int]
    taken_by: tuple[Id, ...]
    message_zh: str
    message_en: str


@dataclass(frozen=True, slots=True)
class Stats:
    """Counts per stage, solver figures and wall time per stage (seconds)."""

    requests: int
    providers: int
    pinned: int
    open_requests: int
    available_providers: int
    requests_with_candidates: int
    candidate_pairs: int
    matched: int
    unmatched: int
    unmatched_by_reason: Mapping[str, int]
    objective: float
    bound: float
    gap: float
    seconds: Mapping[str, float]


@dataclass(frozen=True, slots=True)
class MatchResult:
    """Result of :func:`matching.match` or :func:`matching.rematch`.

    Attributes
    ----------
    assignments : tuple of Assignment
        Matched pairs (pinned ones included), sorted by request id.
    unmatched : tuple of Unmatched
        Open requests without a provider, sorted by request id.
    runners_up : Mapping[Id, tuple of Candidate]
        Per request, the next-best candidates (best first, the chosen one left out): the
        ones to offer first if the chosen provider declines.
    stats : Stats
    weights : Weights
        The weights used, so that a re-match scores the same way by default.
    advice : tuple of Advice
        Recruitment advice: per category × region with requests left short, the exact
        gain of one more slot there (:mod:`matching.explaining.advice`). Not part of
        equality.
    short : Mapping[Id, int]
        Team requests served by fewer providers than they want: how many are missing
        (a request with none at all is in ``unmatched`` too).
    text_cache : TextCache, optional
        The run's fitted TF-IDF model and request vectors. :func:`matching.rematch` reuses
        them when the providers' texts are unchanged (a result rebuilt elsewhere, without
        it, just costs a refit). Not part of equality or ``repr``.
    """

    assignments: tuple[Assignment, ...]
    unmatched: tuple[Unmatched, ...]
    runners_up: Mapping[Id, tuple[Candidate, ...]]
    stats: Stats
    weights: Weights
    text_cache: TextCache | None = field(default=None, repr=False, compare=False)
    advice: tuple[Advice, ...] = field(default=(), repr=False, compare=False)
    short: Mapping[Id, int] = field(default_factory=dict)
    _by_request: Mapping[Id, tuple[Assignment, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        team: dict[Id, list[Assignment]] = {}
        for a in self.assignments:
            team.setdefault(a.request, []).append(a)
        object.__setattr__(self, "_by_request", {r: tuple(t) for r, t in team.items()})

    def provider_of(self, request: Id) -> Id | None:
        """The provider assigned to ``request`` (its best-scored one for a team), or ``None``."""
        found = self.assignment(request)
        return None if found is None else found.provider

    def assignment(self, request: Id) -> Assignment | None:
        """The assignment of ``request`` (the best-scored one of a team), or ``None``."""
        team = self._by_request.get(request, ())
        return max(team, key=lambda a: a.score) if team else None

    def team(self, request: Id) -> tuple[Assignment, ...]:
        """Every assignment of ``request``: one, or a team's members (sorted by provider id
        as the engine orders them), or none."""
        return self._by_request.get(request, ())

    @property
    def pairs(self) -> tuple[tuple[Id, Id], ...]:
        """``(request id, provider id)`` of every assignment, sorted by request id."""
        return tuple((a.request, a.provider) for a in self.assignments)

    @property
    def objective(self) -> float:
        """Total gain of the assignment (what the solver maximised, pins included)."""
        return self.stats.objective
