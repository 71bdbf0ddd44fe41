"""Errors raised by the matching engine.

All of them derive from :class:`MatchingError`, itself a :class:`ValueError`, so a caller
that only cares about "the input was not solvable" can catch one type, while the service
shell can map :class:`InvalidProblem` (bad arrays: a programming or encoding error) and
:class:`Infeasible` (contradictory business constraints, e.g. pins over capacity) to
different responses.
"""

from __future__ import annotations

__all__ = ["Infeasible", "InvalidProblem", "MatchingError"]


class MatchingError(ValueError):
    """Base class of every error the matching engine raises on purpose."""


class InvalidProblem(MatchingError):
    """The arrays do not describe a well-formed problem (shape, dtype, sign, NaN, index)."""


class Infeasible(MatchingError):
    """The constraints contradict each other, so no assignment satisfies all of them."""
