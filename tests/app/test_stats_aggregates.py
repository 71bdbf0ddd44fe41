"""The stats figures aggregated in SQL equal a from-scratch count in plain Python.

``/stats`` reduces requests (and request × provider pairs) to counts, medians and means in
the database (app/stats/repository.py, app/sqlfuncs.py). Here random histories are built row
by row, then changed (offers answered, completed, rated, requests resolved), and after each
round every figure (offer and rating tallies included, and the supply's load, whose providers' regions and skills are JSON) is
recounted in Python from the rows themselves, for several scopes, filters and groupings, on
both databases.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from statistics import fmean, median
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.assignments.transitions import OPEN
from app.common.clock import utc_now
from app.common.principal import Principal
from app.models import (
    Assignment,
    AssignmentStatus,
    Enterprise,
    Feedback,
    FollowUp,
    HelpRequest,
    Plan,
    Provider,
    RequestStatus,
    Role,
    Tier,
)
from app.sqlfuncs import hours_between
from app.sqlfuncs import median as sql_median
from app.stats import repository, service
from app.stats.repository import NO, SETTLED, YES, Figures, Scope, StatsFilter, visible_to
from app.stats.schemas import GroupBy, StatsGroup, StatsRead
from app.stats.service import GroupPageParams
from tests.factories import make_enterprise, make_provider, make_request

REGIONS = ("350582", "350203", "410105")
CATEGORIES = ("financing", "digital_transformation", "management")
STATUSES = list(AssignmentStatus)
ADMIN = Principal(user_id=0, email="admin@test", role=Role.ADMIN)
ZHENGZHOU = Principal(user_id=0, email="z@test", role=Role.COORDINATOR, region_prefixes=("4101",))
FUJIAN = Principal(user_id=0, email="c@test", role=Role.COORDINATOR, region_prefixes=("35",))


@dataclass
class World:
    rng: random.Random
    now: datetime
    enterprises: list[Enterprise]
    providers: list[int]
    plans: dict[int, int]
    requests: list[HelpRequest] = field(default_factory=list)


def _world(db: Session, seed: int) -> World:
    rng = random.Random(seed)
    enterprises = [
        make_enterprise(db, region_code=region, tier=tier)
        for region in REGIONS
        for tier in (Tier.SPECIALISED, Tier.LITTLE_GIANT)
    ]
    providers = [
        make_provider(
            db,
            regions=regions,
            remote_ok=remote,
            active=active,
            capacity=rng.randint(0, 6),
            skills=dict.fromkeys(rng.sample(CATEGORIES, rng.randint(0, 2)), 2),
        ).id
        for regions, remote, active in [
            (["35"], False, True),
            (["3505", "41"], False, True),
            ([], False, True),
            (["4101"], True, True),
            (["3"], False, True),
            (["350582"], False, False),
            (["44"], False, True),
        ]
    ]
    plans = {}
    for enterprise in enterprises:
        plan = Plan(enterprise_id=enterprise.id)
        db.add(plan)
        db.flush()
        plans[enterprise.id] = plan.id
    return World(rng, utc_now(), enterprises, providers, plans)


def _add_requests(db: Session, world: World, n: int) -> None:
    rng = world.rng
    for _ in range(n):
        created = world.now - timedelta(
            hours=rng.uniform(1, 500), microseconds=rng.randrange(10**6)
        )
        world.requests.append(
            make_request(
                db,
                rng.choice(world.enterprises),
                category=rng.choice(CATEGORIES),
                created_at=created,
            )
        )
    db.flush()


def _offer(db: Session, world: World, request: HelpRequest) -> None:
    rng = world.rng
    status = rng.choice(STATUSES)
    offered = (
        None
        if status is AssignmentStatus.PROPOSED
        else request.created_at + timedelta(minutes=rng.randrange(1, 20_000))
    )
    answered = offered is not None and (status in YES or status in NO or rng.random() < 0.3)
    assignment = Assignment(
        request_id=request.id,
        provider_id=rng.choice(world.providers),
        origin="manual",
        status=status,
        offered_at=offered,
        responded_at=offered + timedelta(hours=2) if answered and offered else None,
    )
    db.add(assignment)
    db.flush()
    if status is AssignmentStatus.COMPLETED and rng.random() < 0.7:
        db.add(
            Feedback(
                assignment_id=assignment.id,
                rating=rng.randint(1, 5),
                satisfied=rng.random() < 0.6,
                created_at=world.now,
            )
        )
    if rng.random() < 0.3:
        db.add(
            FollowUp(
                plan_id=world.plans[request.enterprise_id],
                assignment_id=assignment.id,
                kind="visit",
                occurred_at=world.now,
                created_at=world.now,
            )
        )


def _change_requests(db: Session, world: World) -> None:
    """Offers made or answered, requests resolved, given up or withdrawn."""
    rng = world.rng
    for request in world.requests:
        roll = rng.random()
        if roll < 0.35:
            _offer(db, world, request)
        elif roll < 0.5:
            request.status = RequestStatus.RESOLVED
            request.resolved_at = request.created_at + timedelta(hours=rng.uniform(0.1, 900))
        elif roll < 0.55:
            request.status = RequestStatus.UNRESOLVABLE
        elif roll < 0.6:
            request.status = RequestStatus.WITHDRAWN
        elif roll < 0.65:
            request.status = RequestStatus.RESOLVED  # resolved without a recorded time
            request.resolved_at = None
    for assignment in db.scalars(select(Assignment)):
        if rng.random() < 0.2:
            assignment.status = rng.choice(STATUSES)
    db.flush()


# --- the reference: every figure recounted from the rows -------------------------------------


@dataclass
class Unit:
    key: str | None
    created_at: datetime
    first_offered_at: datetime | None
    accepted: bool
    followed_up: bool
    resolved: bool
    resolved_at: datetime | None
    settled: bool
    offers: tuple[int, ...]  # yes, no, feedback, rating sum, satisfied


def _tally(offers: list[Assignment], feedback: dict[int, Feedback]) -> tuple[int, ...]:
    offered = [a for a in offers if a.offered_at is not None]
    rated = [feedback[a.id] for a in offered if a.id in feedback]
    return (
        sum(_answered_yes(a) for a in offered),
        sum(a.status in NO for a in offered),
        len(rated),
        sum(f.rating for f in rated),
        sum(f.satisfied for f in rated),
    )


def _answered_yes(a: Assignment) -> bool:
    return a.status in YES or (a.responded_at is not None and a.status not in NO)


def _reference_units(
    db: Session, scope: tuple[str, ...] | None, filters: StatsFilter, group_by: GroupBy | None
) -> list[Unit]:
    db.expire_all()
    enterprises = {e.id: e for e in db.scalars(select(Enterprise))}
    feedback = {f.assignment_id: f for f in db.scalars(select(Feedback))}
    followed = {f.assignment_id for f in db.scalars(select(FollowUp))}
    offers: dict[int, list[Assignment]] = defaultdict(list)
    for a in db.scalars(select(Assignment)):
        offers[a.request_id].append(a)
    units: list[Unit] = []
    for r in db.scalars(select(HelpRequest)):
        e = enterprises[r.enterprise_id]
        if scope is not None and not any(e.region_code.startswith(p) for p in scope):
            continue
        if filters.category and r.category != filters.category:
            continue
        if filters.tier and e.tier != filters.tier:
            continue
        if filters.since and r.created_at < filters.since:
            continue
        if filters.until and r.created_at >= filters.until:
            continue
        if group_by is GroupBy.PROVIDER:
            by_provider: dict[int, list[Assignment]] = defaultdict(list)
            for a in offers[r.id]:
                if a.offered_at is not None:
                    by_provider[a.provider_id].append(a)
            for provider_id, mine in by_provider.items():
                delivered = any(
                    a.status is AssignmentStatus.COMPLETED
                    and (a.id not in feedback or feedback[a.id].satisfied)
                    for a in mine
                )
                accepted = any(_answered_yes(a) for a in mine)
                resolved = r.status is RequestStatus.RESOLVED and delivered
                units.append(
                    Unit(
                        str(provider_id),
                        r.created_at,
                        min(a.offered_at for a in mine if a.offered_at),
                        accepted,
                        any(a.id in followed for a in mine),
                        resolved,
                        r.resolved_at if resolved else None,
                        resolved or (r.status in SETTLED and accepted),
                        _tally(mine, feedback),
                    )
                )
            continue
        key = {
            GroupBy.REGION: e.region_code[:4],
            GroupBy.CATEGORY: r.category,
            GroupBy.TIER: e.tier.value,
            None: None,
        }[group_by]
        offered = [a.offered_at for a in offers[r.id] if a.offered_at is not None]
        units.append(
            Unit(
                key,
                r.created_at,
                min(offered) if offered else None,
                any(_answered_yes(a) for a in offers[r.id]),
                any(a.id in followed for a in offers[r.id]),
                r.status is RequestStatus.RESOLVED,
                r.resolved_at,
                r.status in SETTLED,
                _tally(offers[r.id], feedback),
            )
        )
    return units


def _hours(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds() / 3600


def _reference_block(units: list[Unit]) -> dict[str, Any]:
    resolved = [u for u in units if u.resolved]
    to_match = [_hours(u.first_offered_at, u.created_at) for u in units if u.first_offered_at]
    to_resolve = [_hours(u.resolved_at, u.created_at) for u in resolved if u.resolved_at]
    return {
        "funnel": [
            len(units),
            len(to_match),
            sum(u.accepted for u in units),
            sum(u.followed_up for u in units),
            len(resolved),
        ],
        "settled": sum(u.settled for u in units),
        "offers": _reference_rates(
            [sum(column) for column in zip(*(u.offers for u in units), strict=True)]
        ),
        "to_match": _reference_durations(to_match),
        "to_resolve": _reference_durations(to_resolve),
    }


def _reference_rates(tally: list[int]) -> tuple[Any, ...]:
    yes, no, rated, rating_sum, satisfied = tally or [0] * 5
    share = (lambda n: round(n / rated, 4)) if rated else (lambda _n: None)
    return (yes + no, yes, rated, share(rating_sum), share(satisfied))


def _reference_durations(values: list[float]) -> tuple[int, float | None, float | None]:
    if not values:
        return (0, None, None)
    return (len(values), median(values), fmean(values))


def _reference_load(
    db: Session, scope: tuple[str, ...] | None, category: str | None, only: int | None = None
) -> dict[str, int]:
    """The supply's load (or one provider's, ``only``), open assignments over all regions."""
    open_now = [a.provider_id for a in db.scalars(select(Assignment)) if a.status in OPEN]

    def serves(p: Provider) -> bool:
        if scope is None or not p.regions or p.remote_ok:
            return True
        return any(r.startswith(s) or s.startswith(r) for r in p.regions for s in scope)

    chosen = [
        p
        for p in db.scalars(select(Provider))
        if (p.id == only if only is not None else p.active and serves(p))
        and (only is not None or category is None or category in p.skills)
    ]
    return {
        "providers": len(chosen),
        "capacity": sum(p.capacity for p in chosen),
        "open_assignments": sum(open_now.count(p.id) for p in chosen),
    }


def _answer_load(group: StatsGroup) -> dict[str, int]:
    assert group.load is not None
    return group.load.model_dump(exclude={"utilisation"})


def _answer_block(group: StatsGroup) -> dict[str, Any]:
    f = group.funnel
    return {
        "funnel": [f.submitted, f.matched, f.accepted, f.first_follow_up, f.resolved],
        "settled": group.rates.settled,
        "offers": (
            group.rates.offers_answered,
            group.rates.offers_accepted,
            group.rates.satisfaction.feedback,
            group.rates.satisfaction.mean_rating,
            group.rates.satisfaction.satisfied_share,
        ),
        "to_match": (
            group.time_to_match_hours.count,
            group.time_to_match_hours.median,
            group.time_to_match_hours.mean,
        ),
        "to_resolve": (
            group.time_to_resolution_hours.count,
            group.time_to_resolution_hours.median,
            group.time_to_resolution_hours.mean,
        ),
    }


def _same(answer: dict[str, Any], reference: dict[str, Any]) -> None:
    assert answer["funnel"] == reference["funnel"]
    assert answer["settled"] == reference["settled"]
    assert answer["offers"] == reference["offers"]
    for figure in ("to_match", "to_resolve"):
        count, mid, mean = reference[figure]
        assert answer[figure] == (
            count,
            pytest.approx(mid, abs=0.0011) if mid is not None else None,
            pytest.approx(mean, abs=0.0011) if mean is not None else None,
        ), figure


CASES: list[tuple[Principal, StatsFilter, GroupBy | None]] = [
    (ADMIN, StatsFilter(), None),
    (ADMIN, StatsFilter(), GroupBy.REGION),
    (ADMIN, StatsFilter(), GroupBy.PROVIDER),
    (FUJIAN, StatsFilter(), GroupBy.CATEGORY),
    (FUJIAN, StatsFilter(), GroupBy.PROVIDER),
    (FUJIAN, StatsFilter(region="3502", tier=Tier.LITTLE_GIANT), GroupBy.TIER),
    (ADMIN, StatsFilter(category="financing"), GroupBy.PROVIDER),
    (FUJIAN, StatsFilter(category="management"), None),
    (ZHENGZHOU, StatsFilter(), GroupBy.PROVIDER),
]


def _check_every_case(db: Session, world: World) -> None:
    for principal, filters, group_by in CASES:
        since = world.now - timedelta(hours=250)
        for window in (filters, StatsFilter(**{**filters.__dict__, "since": since})):
            answer = service.summarise(db, principal=principal, filters=window, group_by=group_by)
            scope = visible_to(principal, region=window.region).prefixes
            total_units = _reference_units(db, scope, window, None)
            _same(_answer_block(answer.total), _reference_block(total_units))
            assert _answer_load(answer.total) == _reference_load(db, scope, window.category)
            if group_by is None:
                continue
            units = _reference_units(db, scope, window, group_by)
            buckets: dict[str, list[Unit]] = defaultdict(list)
            for unit in units:
                buckets[unit.key or ""].append(unit)
            groups = {g.key or "": g for g in answer.groups if g.funnel.submitted}
            assert sorted(groups) == sorted(buckets), (principal.role, window, group_by)
            for key, group in groups.items():
                assert key is not None
                _same(_answer_block(group), _reference_block(buckets[key]))
                if group_by is GroupBy.PROVIDER:
                    provider = db.get(Provider, int(key))
                    assert provider is not None
                    assert group.label == provider.name
                    only = _reference_load(db, scope, None, only=provider.id)
                    assert _answer_load(group) == only


def _pages(
    db: Session, principal: Principal, filters: StatsFilter, group_by: GroupBy, limit: int
) -> list[StatsRead]:
    """Every page of groups, following ``next_cursor`` (bounded, so a loop fails the test)."""
    pages = [
        service.summarise(
            db,
            principal=principal,
            filters=filters,
            group_by=group_by,
            page=GroupPageParams(limit=limit),
        )
    ]
    while pages[-1].next_cursor is not None and len(pages) < 100:
        cursor = pages[-1].next_cursor
        pages.append(
            service.summarise(
                db,
                principal=principal,
                filters=filters,
                group_by=group_by,
                page=GroupPageParams(limit=limit, cursor=cursor),
            )
        )
    return pages


def _check_pages(db: Session) -> None:
    """Pages of any size, concatenated, are the whole: the same groups in the same order,
    each once, the same total block on every page, and ``total_groups`` the count; the
    export's stream of every group is the same sequence (the figures already equal the
    recount, by _check_every_case)."""
    for principal, filters, group_by in CASES:
        if group_by is None:
            continue
        whole = service.summarise(
            db,
            principal=principal,
            filters=filters,
            group_by=group_by,
            page=GroupPageParams(limit=10_000),
        )
        assert whole.next_cursor is None
        assert whole.total_groups == len(whole.groups)
        for limit in (1, 2, 3):
            pages = _pages(db, principal, filters, group_by, limit)
            _same_groups([g for page in pages for g in page.groups], whole.groups)
            assert all(len(page.groups) <= limit for page in pages)
            assert {page.total_groups for page in pages} == {whole.total_groups}
            for page in pages:
                _same_groups([page.total], [whole.total])
            assert pages[-1].next_cursor is None
        head, every = service.every_group(
            db, principal=principal, filters=filters, group_by=group_by
        )
        _same_groups([head.total], [whole.total])
        _same_groups(list(every), whole.groups)


def _same_groups(found: list[StatsGroup], expected: list[StatsGroup]) -> None:
    """The same groups in the same order. Another statement may sum float hours in another
    order, so a mean may differ in its last rounded digit: figures are compared as _same."""
    assert [(g.key, g.label, g.load) for g in found] == [(g.key, g.label, g.load) for g in expected]
    for one, other in zip(found, expected, strict=True):
        _same(_answer_block(one), _answer_block(other))


def _check_busiest(db: Session) -> None:
    """The dashboard's most loaded providers: offered work in scope, with capacity, by open
    assignments ÷ capacity now, highest first, ties by id."""
    regions = {e.id: e.region_code for e in db.scalars(select(Enterprise))}
    owner = {r.id: regions[r.enterprise_id] for r in db.scalars(select(HelpRequest))}
    capacity = {p.id: p.capacity for p in db.scalars(select(Provider))}
    for principal in (ADMIN, FUJIAN, ZHENGZHOU):
        scope = visible_to(principal).prefixes
        offered = {
            a.provider_id
            for a in db.scalars(select(Assignment))
            if a.offered_at is not None
            and (scope is None or any(owner[a.request_id].startswith(p) for p in scope))
        }
        loads = {p: _reference_load(db, scope, None, only=p) for p in offered if capacity[p] > 0}
        expected = sorted(
            loads, key=lambda p: (-loads[p]["open_assignments"] / loads[p]["capacity"], p)
        )[:4]
        found = service.busiest_providers(db, principal=principal, filters=StatsFilter(), limit=4)
        assert [int(b.key) for b in found] == expected
        assert [b.load.model_dump(exclude={"utilisation"}) for b in found] == [
            loads[p] for p in expected
        ]


@pytest.mark.parametrize("seed", [1, 2])
def test_sql_figures_equal_a_count_from_scratch_after_each_round_of_changes(
    db: Session, seed: int
) -> None:
    world = _world(db, seed)
    _add_requests(db, world, 40)
    _check_every_case(db, world)
    _check_pages(db)
    for _ in range(3):
        _change_requests(db, world)
        _add_requests(db, world, 10)
        _check_every_case(db, world)
    _check_pages(db)
    _check_busiest(db)


FORMS: list[tuple[Scope, StatsFilter]] = [
    (Scope(None), StatsFilter()),
    (Scope(("35",)), StatsFilter()),
    (Scope(("3502", "41")), StatsFilter(category="financing")),
    (Scope(None), StatsFilter(tier=Tier.LITTLE_GIANT)),
]


def _plain(
    db: Session, scope: Scope, filters: StatsFilter, group_by: GroupBy | None
) -> dict[str | None, Figures]:
    """The figures of the plain statement (one ``GROUP BY`` key, or none, over the requests
    joined to their per-request offer facts), which the faster forms must equal."""
    return repository._read_figures(db, repository._request_statement(scope, filters, group_by))


def _same_figures(found: Figures, expected: Figures) -> None:
    """Equal, medians included (the same values, so the same middle); a mean may differ in its
    last bits only, as another statement may add the same hours in another order."""
    unmeaned = partial(replace, match_mean=None, resolution_mean=None)
    assert unmeaned(found) == unmeaned(expected)
    for name in ("match_mean", "resolution_mean"):
        mean = getattr(expected, name)
        assert getattr(found, name) == (pytest.approx(mean, rel=1e-12) if mean else mean)


@pytest.mark.parametrize("seed", [3, 4])
def test_each_form_of_the_request_figures_equals_the_plain_statement(
    db: Session, seed: int
) -> None:
    """The total and the pages of groups (on SQLite: one materialized pass, the total summed
    from the groups; on PostgreSQL: grouping sets) give the plain statement's figures to the
    last digit, for every scope, filter and grouping, after every round of changes."""
    world = _world(db, seed)
    _add_requests(db, world, 40)
    for _ in range(3):
        _change_requests(db, world)
        _add_requests(db, world, 10)
        for scope, filters in FORMS:
            total = repository.request_total(db, scope=scope, filters=filters)
            _same_figures(total, _plain(db, scope, filters, None).get(None, Figures()))
            for group_by in (GroupBy.REGION, GroupBy.CATEGORY, GroupBy.TIER):
                expected = _plain(db, scope, filters, group_by)
                page = repository.request_page(
                    db, scope=scope, filters=filters, group_by=group_by, after=None, limit=1000
                )
                _same_figures(page.total, total)
                assert [key for key, _ in page.groups] == sorted(k or "" for k in expected)
                assert page.group_count == len(expected)
                for key, figures in page.groups:
                    _same_figures(figures, expected[key])


def test_median_averages_the_middle_pair_and_skips_nulls(db: Session) -> None:
    """The one non-portable aggregate, on its own: even count, odd count, NULLs, none."""
    enterprise = make_enterprise(db)
    now = utc_now()
    hours = {"financing": [1.0, 2.0, 10.0, 40.0], "management": [3.0, 5.0, 100.0]}
    for category, values in hours.items():
        for value in values:
            make_request(
                db,
                enterprise,
                category=category,
                created_at=now - timedelta(hours=value),
                resolved_at=now,
            )
        make_request(db, enterprise, category=category, created_at=now)  # resolved_at NULL
    make_request(db, enterprise, category="digital_transformation", created_at=now)
    duration = hours_between(HelpRequest.resolved_at, HelpRequest.created_at)
    statement = (
        select(HelpRequest.category, sql_median(duration))
        .where(HelpRequest.enterprise_id == enterprise.id)
        .group_by(HelpRequest.category)
    )
    rows: dict[str, float | None] = dict(list(db.execute(statement)))
    assert rows["financing"] == pytest.approx(6.0)
    assert rows["management"] == pytest.approx(5.0)
    assert rows["digital_transformation"] is None
