"""Hypothesis strategies for small matching problems, and an independent rule checker.

The checker re-derives every hard rule from the input *rows* with plain Python, without
touching the engine's encoder or feature code, so a bug there cannot hide itself.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from hypothesis import strategies as st

from matching import (
    Assignment,
    Exclusion,
    Id,
    Kind,
    MatchResult,
    Problem,
    ProviderIn,
    RequestIn,
    Tier,
    Weights,
)

CATS = ("financing", "legal_ip", "export")
REGIONS = ("350582", "350583", "350102", "410102", "410103")
SERVED = ("35", "3505", "350582", "41", "4101", "410103")
INDUSTRIES = ("C17", "C1711", "C1712", "C18", "E47", "C")
WORDS = (
    "融资",
    "贷款",
    "专利",
    "商标",
    "出口",
    "报关",
    "loan",
    "patent",
    "export",
    "customs",
    "数据库",
    "database",
)
ENTERPRISES = ("e0", "e1", "e2", "e3")


def _text(draw: st.DrawFn) -> str:
    return " ".join(draw(st.lists(st.sampled_from(WORDS), max_size=4)))


def _request(draw: st.DrawFn, i: int) -> RequestIn:
    return RequestIn(
        id=f"r{i}",
        category=draw(st.sampled_from(CATS)),
        text=_text(draw),
        industry=draw(st.sampled_from(INDUSTRIES)),
        region=draw(st.sampled_from(REGIONS)),
        enterprise=draw(st.sampled_from(ENTERPRISES)),
        urgency=draw(st.integers(1, 5)),
        tier=draw(st.sampled_from(list(Tier))),
        extra_categories=(
            draw(st.lists(st.sampled_from(CATS), max_size=2, unique=True))
            if draw(st.integers(0, 3)) == 0
            else ()
        ),
    )


def _provider(draw: st.DrawFn, j: int) -> ProviderIn:
    return ProviderIn(
        id=f"p{j}",
        kind=draw(st.sampled_from(list(Kind))),
        skills=draw(st.dictionaries(st.sampled_from(CATS), st.integers(1, 3), max_size=3)),
        expertise=_text(draw),
        industries=draw(st.lists(st.sampled_from(INDUSTRIES), max_size=2, unique=True)),
        regions=draw(st.lists(st.sampled_from(SERVED), max_size=2, unique=True)),
        remote=draw(st.booleans()),
        capacity=draw(st.integers(0, 3)),
        load=draw(st.integers(0, 2)),
        paused=draw(st.integers(0, 5)) == 0,
        active=draw(st.integers(0, 7)) != 0,
        rating=draw(st.none() | st.floats(0, 5)),
        conflicts=draw(st.sets(st.sampled_from(ENTERPRISES), max_size=1)),
    )


@st.composite
def problems(draw: st.DrawFn, max_requests: int = 8, max_providers: int = 6) -> Problem:
    """Small problems over a few categories, nested region and industry codes."""
    requests = [_request(draw, i) for i in range(draw(st.integers(0, max_requests)))]
    providers = [_provider(draw, j) for j in range(draw(st.integers(0, max_providers)))]
    exclusions: list[Exclusion] = []
    if requests and providers:
        for _ in range(draw(st.integers(0, 3))):
            p = draw(st.sampled_from(providers)).id
            if draw(st.booleans()):
                exclusions.append(Exclusion(provider=p, request=draw(st.sampled_from(requests)).id))
            else:
                exclusions.append(
                    Exclusion(provider=p, enterprise=draw(st.sampled_from(ENTERPRISES)))
                )
    return Problem.build(requests=requests, providers=providers, exclusions=exclusions)


@st.composite
def weights(draw: st.DrawFn) -> Weights:
    """Weights with random non-negative feature weights, min score, K and fairness."""
    skill, text, industry, region, rating = (
        draw(st.sampled_from((0.0, 0.1, 0.5, 1.0))) for _ in range(5)
    )
    if skill + text + industry + region + rating == 0:
        skill = 1.0
    return Weights(
        skill,
        text,
        industry,
        region,
        rating,
        min_score=draw(st.sampled_from((0.0, 0.1, 0.3))),
        top_k=draw(st.integers(1, 4)),
        fairness=draw(st.sampled_from((0.0, 0.0, 0.2))),
    )


@dataclass(frozen=True)
class RequestRow:
    """What the checker reads of a request, as plain Python values."""

    category: str
    extra: tuple[str, ...]  # secondary categories
    region: str
    enterprise: Id


@dataclass(frozen=True)
class ProviderRow:
    """What the checker reads of a provider, as plain Python values."""

    skills: Mapping[str, int]
    regions: tuple[str, ...]
    remote: bool
    active: bool
    paused: bool
    conflicts: frozenset[Id]
    capacity: int
    load: int


def rows(problem: Problem) -> tuple[dict[Id, RequestRow], dict[Id, ProviderRow]]:
    """Requests and providers of ``problem`` keyed by id (plain Python view)."""
    rq, pv = problem.requests, problem.providers
    reqs = {
        rq.id[i]: RequestRow(str(rq.category[i]), rq.extra[i], str(rq.region[i]), rq.enterprise[i])
        for i in range(len(rq))
    }
    provs = {
        pv.id[j]: ProviderRow(
            skills=pv.skills[j],
            regions=pv.regions[j],
            remote=bool(pv.remote[j]),
            active=bool(pv.active[j]),
            paused=bool(pv.paused[j]),
            conflicts=pv.conflicts[j],
            capacity=int(pv.capacity[j]),
            load=int(pv.load[j]),
        )
        for j in range(len(pv))
    }
    return reqs, provs


def assigned(result: MatchResult, request: Id) -> Assignment:
    """The assignment of ``request``, which the test expects to exist."""
    found = result.assignment(request)
    assert found is not None, f"{request} is not assigned"
    return found


def excluded(problem: Problem, request: object, enterprise: object, provider: object) -> bool:
    """Whether an exclusion forbids the pair."""
    return any(
        ex.provider == provider
        and (ex.request == request or (ex.request is None and ex.enterprise == enterprise))
        for ex in problem.exclusions
    )


def serves_region(provider: ProviderRow, region: str) -> bool:
    served = provider.regions
    return not served or any(region.startswith(s) for s in served) or provider.remote


def violations(problem: Problem, result: MatchResult, w: Weights) -> list[str]:
    """Every hard rule broken by ``result`` (empty when it is feasible)."""
    reqs, provs = rows(problem)
    pinned = dict(problem.pinned)
    out = []
    for a in result.assignments:
        r, p = reqs[a.request], provs[a.provider]
        if a.request in pinned:
            if pinned[a.request] != a.provider:
                out.append(f"pin of {a.request} moved")
            continue
        if not p.active or p.paused:
            out.append(f"{a}: inactive or paused")
        if not {r.category, *r.extra} & set(p.skills):
            out.append(f"{a.request}->{a.provider}: category")
        if not serves_region(p, r.region):
            out.append(f"{a.request}->{a.provider}: region")
        if r.enterprise in p.conflicts:
            out.append(f"{a.request}->{a.provider}: conflict")
        if excluded(problem, a.request, r.enterprise, a.provider):
            out.append(f"{a.request}->{a.provider}: exclusion")
        fit = a.score / a.explanation.priority
        if fit < w.min_score - 1e-12:
            out.append(f"{a.request}->{a.provider}: fit {fit} < {w.min_score}")
    used = Counter(a.provider for a in result.assignments)
    for pid, n in used.items():
        room = provs[pid].capacity - provs[pid].load
        if n > room:
            out.append(f"{pid}: {n} pairs > capacity - load {room}")
    wanted = dict(zip(problem.requests.id, problem.requests.wanted.tolist(), strict=True))
    for request, n in Counter(a.request for a in result.assignments).items():
        if n > wanted[request]:
            out.append(f"{request} has {n} providers, wants {wanted[request]}")
    if len(set(result.pairs)) < len(result.pairs):
        out.append("a provider serves one request twice")
    missing = set(pinned.items()) - set(result.pairs)
    out.extend(f"pin {pair} dropped" for pair in missing)
    return out
