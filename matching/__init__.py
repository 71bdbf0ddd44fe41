"""zhuqi matching engine: SMEs' help requests → volunteer experts and service platforms.

Plain functions over frozen dataclasses of arrays and opaque ids; depends on numpy, scipy
and scikit-learn only. Typical use::

    import matching

    problem = matching.Problem.build(requests=[...], providers=[...], pinned=[...])
    for shortage in matching.check_supply(problem):
        print(shortage.message_en)
    result = matching.match(problem, matching.Weights(fairness=0.1))
    later = matching.rematch(result, problem, declined=[("r1", "e7")])
"""

from matching import errors
from matching.check import PairCheck, check_pairs
from matching.errors import Infeasible, InvalidProblem, MatchingError
from matching.explaining.advice import Advice
from matching.explaining.supply import Shortage, check_supply
from matching.pipeline import match, rank, rematch
from matching.problem import (
    CATEGORIES,
    Exclusion,
    Id,
    Kind,
    Problem,
    ProviderIn,
    ProviderTable,
    RequestIn,
    RequestTable,
    Tier,
)
from matching.result import (
    Assignment,
    Candidate,
    Explanation,
    MatchResult,
    Reason,
    Stats,
    Unmatched,
)
from matching.scoring.glossary import Glossary
from matching.scoring.lexicon import Lexicon
from matching.scoring.text import analyze
from matching.scoring.weights import FEATURES, Weights
from matching.solving import SolveResult, solve_assignment
from matching.validate import validate

__all__ = [
    "CATEGORIES",
    "FEATURES",
    "Advice",
    "Assignment",
    "Candidate",
    "Exclusion",
    "Explanation",
    "Glossary",
    "Id",
    "Infeasible",
    "InvalidProblem",
    "Kind",
    "Lexicon",
    "MatchResult",
    "MatchingError",
    "PairCheck",
    "Problem",
    "ProviderIn",
    "ProviderTable",
    "Reason",
    "RequestIn",
    "RequestTable",
    "Shortage",
    "SolveResult",
    "Stats",
    "Tier",
    "Unmatched",
    "Weights",
    "analyze",
    "check_pairs",
    "check_supply",
    "errors",
    "match",
    "rank",
    "rematch",
    "solve_assignment",
    "validate",
]
