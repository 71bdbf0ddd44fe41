"""Scoring weights and knobs of one match run.

A pair's *fit* is the weighted mean of five features in [0, 1]::

    fit(r, p) = (w_skill f_skill + w_text f_text + w_industry f_industry
                 + w_region f_region + w_rating f_rating) / (sum of the five weights)

so it is itself in [0, 1] and ``min_score`` has the same meaning whatever the weights'
scale. The *score* the solver maximises is ``fit × priority(r)``, where the priority grows
with urgency and cultivation tier, so that when capacity is scarce it goes to the requests
that matter most (DOMAIN.md, "Matching").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from matching.errors import InvalidProblem

__all__ = ["FEATURES", "Weights"]

#: Feature names in the fixed order used by every ``(n_pairs, 5)`` feature array.
FEATURES: tuple[str, ...] = ("skill", "text", "industry", "region", "rating")


@dataclass(frozen=True, slots=True)
class Weights:
    """Weights of the score and the knobs of a run; validated on construction.

    Attributes
    ----------
    skill, text, industry, region, rating : float
        Non-negative feature weights, at least one positive. Text and skill lead by
        default: on the held-out text bench (``bench/text_quality.py``, README "Text
        quality") ranking the providers that cover a request by the full fit put a right
        one first for 78% of 36 colloquial requests without text, 92% with text at 0.30
        and 94% at 0.40; 0.50 gains one request more, but the bench only knows what text
        can tell, so 0.40 leaves skill and region (local help before remote help) a real
        say. Rating is small so that new providers (no rating) are not starved.
    min_score : float
        Hard floor in [0, 1] on the fit (before priority): weaker pairs are never proposed.
    top_k : int
        Candidates kept per request (>= 1). The exact solve runs on these sparse pairs, so a
        larger K trades time for a (rarely) better optimum.
    fairness : float
        In [0, 1). The k-th slot of a provider (counting its current load and fixed pairs)
        gains ``(1 - fairness) ** k`` of the pair's score, which spreads load. 0 disables it.
    urgency_gain : float
        Priority gained per urgency level above 1: ``1 + urgency_gain × (urgency - 1)``.
    tier_gain : float
        Priority gained per cultivation tier step (none=0 … champion=4), multiplied in.
    runners_up : int
        How many next-best candidates each request reports (>= 0).
    secondary : float
        In [0, 1]: skill fit of a provider matched on one of the request's secondary
        categories, as a share of what the same level gives on the primary category. Below
        1 so that a specialist of the main problem is preferred; 0 turns secondary
        matching off in effect (only text, industry, region and rating would count).
    """

    skill: float = 0.30
    text: float = 0.40
    industry: float = 0.10
    region: float = 0.15
    rating: float = 0.05
    min_score: float = 0.2
    top_k: int = 20
    fairness: float = 0.0
    urgency_gain: float = 0.15
    tier_gain: float = 0.1
    runners_up: int = 3
    secondary: float = 0.6

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidProblem(f"weights.{f.name} must be a number, got {value!r}")
            if not math.isfinite(value) or value < 0:
                raise InvalidProblem(f"weights.{f.name} must be finite and >= 0, got {value}")
        if sum(self.feature_weights) <= 0:
            raise InvalidProblem("weights: the feature weights must sum to more than 0")
        if self.min_score > 1:
            raise InvalidProblem(f"weights.min_score must be in [0, 1], got {self.min_score}")
        if self.secondary > 1:
            raise InvalidProblem(f"weights.secondary must be in [0, 1], got {self.secondary}")
        if self.fairness >= 1:
            raise InvalidProblem(f"weights.fairness must be in [0, 1), got {self.fairness}")
        for name in ("top_k", "runners_up"):
            if not isinstance(getattr(self, name), int):
                raise InvalidProblem(f"weights.{name} must be an integer")
        if self.top_k < 1:
            raise InvalidProblem(f"weights.top_k must be >= 1, got {self.top_k}")

    @property
    def feature_weights(self) -> tuple[float, float, float, float, float]:
        """The five feature weights in :data:`FEATURES` order."""
        return (self.skill, self.text, self.industry, self.region, self.rating)

    @property
    def normalised(self) -> tuple[float, ...]:
        """Feature weights divided by their sum, so that the fit stays in [0, 1]."""
        total = sum(self.feature_weights)
        return tuple(w / total for w in self.feature_weights)
