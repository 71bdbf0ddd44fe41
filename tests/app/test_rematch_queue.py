"""A decline marks its request; the worker's drain re-matches marked requests in batches,
each exactly once however many workers drain, with the weights of the run that made the
declined offer. The drain is the worker's own call (``tests.factories.rematch_declined``)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app.assignments import rematch_queue
from app.assignments import service as assignment_service
from app.assignments.schemas import Decline, ManualAssign
from app.common.clock import as_utc, utc_now
from app.common.principal import Principal
from app.db import make_engine, make_session_factory
from app.match_runs.claims import Sessions
from app.models import Assignment, AssignmentStatus, Event, HelpRequest, Provider, Role, User
from app.supervision.batches import begin_each
from app.worker.loop import Worker
from tests.app.conftest import Cast
from tests.app.test_match_runs_api import URL as RUNS
from tests.app.test_match_runs_api import drafted_run, proposals
from tests.factories import (
    fetch,
    make_enterprise,
    make_provider,
    make_request,
    make_user,
    rematch_declined,
    sessions_of_test,
)
from tests.live import own_database

API = "/api/v1"


def _offers(db: Session, request_id: int) -> list[Assignment]:
    db.expire_all()
    return list(
        db.scalars(
            select(Assignment).where(
                Assignment.request_id == request_id,
                Assignment.status == AssignmentStatus.OFFERED,
            )
        )
    )


def _decline(client: TestClient, cast: Cast, offer_id: int, user: User) -> None:
    r = client.post(
        f"{API}/assignments/{offer_id}/decline",
        json={"reason_code": "no_capacity"},
        headers=cast.headers(user),
    )
    assert r.status_code == 200, r.text


def _offer_by_hand(client: TestClient, cast: Cast, request_id: int, provider_id: int) -> int:
    r = client.post(
        f"{API}/assignments",
        json={"request_id": request_id, "provider_id": provider_id},
        headers=cast.headers(cast.coordinator),
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


class TestDeclineLeavesTheRematchToTheWorker:
    def test_the_drain_offers_the_runner_up_with_the_runs_weights(
        self, client: TestClient, db: Session, cast: Cast
    ) -> None:
        request = make_request(db, cast.ent, category="export", title="出口订单下滑,开拓海外市场")
        strong = make_provider(db, skills={"export": 3}, expertise="外贸 出口 海外市场")
        second = make_provider(db, skills={"export": 3}, expertise="外贸 出口")
        make_provider(db, skills={"export": 1}, expertise="仓储 物流 设备")
        strong_user = make_user(db, Role.EXPERT, provider_id=strong.id)
        db.commit()
        staff = cast.headers(cast.coordinator)
        run = drafted_run(client, db, staff, {"min_score": 0.05, "top_k": 7})
        assert client.post(f"{RUNS}/{run['id']}/publish", headers=staff).status_code == 200
        (offer,) = [a for a in proposals(db, run["id"]) if a.request_id == request.id]
        assert offer.provider_id == strong.id
        runner_up = offer.breakdown["runners_up"][0]["provider_id"]
        assert runner_up == second.id

        _decline(client, cast, offer.id, strong_user)
        assert _offers(db, request.id) == []  # the decline answered without the engine
        assert rematch_queue.pending(db) == 1
        assert rematch_declined(db) == 1
        (new,) = _offers(db, request.id)
        assert new.provider_id == runner_up
        assert new.origin == "rematch"
        assert new.breakdown["weights_of_run"] == run["id"]
        assert rematch_queue.pending(db) == 0
        assert rematch_declined(db) == 0  # drained: nothing is offered twice
        assert len(_offers(db, request.id)) == 1

    def test_a_batch_offers_what_one_by_one_would(
        self, client: TestClient, db: Session, cast: Cast
    ) -> None:
        """Two copies of one province corner (no provider serves the other's region): the
        first copy's declines drained one request per batch, the second's all in one batch,
        must end with the same offers, role for role."""
        worlds = [self._world(db, "350582", ["3505"]), self._world(db, "350203", ["3502"])]
        db.commit()
        chosen: list[list[int]] = []
        for size, (requests, providers, users) in zip((1, 250), worlds, strict=True):
            for request, provider, user in zip(requests, providers[:3], users, strict=True):
                _decline(client, cast, _offer_by_hand(client, cast, request, provider), user)
            taken = rematch_queue.drain(_each(db), _each(db), batch=size)
            assert taken == len(requests)
            offered = [_offers(db, r) for r in requests]
            assert [len(o) for o in offered] == [1, 1, 1]
            chosen.append([providers.index(o[0].provider_id) for o in offered])
        assert chosen[0] == chosen[1] == [3, 4, 5]  # each request's own runner-up

    def test_a_request_withdrawn_or_offered_by_hand_meanwhile_only_loses_its_mark(
        self, client: TestClient, db: Session, cast: Cast
    ) -> None:
        withdrawn, by_hand = make_request(db, cast.ent), make_request(db, cast.ent)
        db.commit()
        for request in (withdrawn, by_hand):
            offer = _offer_by_hand(client, cast, request.id, cast.expert.id)
            _decline(client, cast, offer, cast.expert_user)
        ent = cast.headers(cast.ent_user)
        assert (
            client.post(f"{API}/requests/{withdrawn.id}/withdraw", headers=ent).status_code == 200
        )
        hand = _offer_by_hand(client, cast, by_hand.id, cast.platform.id)
        assert rematch_declined(db) == 2
        assert _offers(db, withdrawn.id) == []
        assert [a.id for a in _offers(db, by_hand.id)] == [hand]
        assert rematch_queue.pending(db) == 0

    @staticmethod
    def _world(db: Session, region: str, serves: list[str]) -> Any:
        enterprise = make_enterprise(db, region_code=region)
        categories = ["export", "legal_ip", "technology_rd"]  # none the cast serves
        requests = [make_request(db, enterprise, category=c).id for c in categories]
        providers: list[Provider] = []
        for level in (3, 2):  # the first three are offered by hand, then the runners-up
            for category in categories:
                providers.append(
                    make_provider(
                        db, skills={category: level}, regions=serves, home_region_code=region
                    )
                )
        users = [make_user(db, Role.EXPERT, provider_id=p.id) for p in providers[:3]]
        return requests, [p.id for p in providers], users


def _each(db: Session) -> Any:
    """The worker's transactions, as savepoints of the test's own."""
    return begin_each(sessions_of_test(db))


class TestABusyWorkerGathersDeclines:
    """Within ``rematch_gather`` of a drain that took requests, the worker leaves new declines
    marked, so that the next drain takes them in one batch; a quiet worker drains at once."""

    @staticmethod
    def _worker(db: Session, gather: timedelta) -> Worker:
        factory = sessions_of_test(db)
        return Worker(
            Sessions(factory, factory), worker_id="test", sweep_every=None, rematch_gather=gather
        )

    def _declined(self, client: TestClient, db: Session, cast: Cast) -> int:
        request = make_request(db, cast.ent)
        db.commit()
        offer = _offer_by_hand(client, cast, request.id, cast.expert.id)
        _decline(client, cast, offer, cast.expert_user)
        return request.id

    def test_declines_soon_after_a_drain_wait_for_the_window(
        self, client: TestClient, db: Session, cast: Cast
    ) -> None:
        worker = self._worker(db, timedelta(hours=1))
        first = self._declined(client, db, cast)
        assert worker.rematch_declined() == 1  # the first after a quiet spell: at once
        assert len(_offers(db, first)) == 1
        second = self._declined(client, db, cast)
        assert worker.rematch_declined() == 0  # gathering
        assert rematch_queue.pending(db) == 1
        assert _offers(db, second) == []
        assert worker.rematch_declined(gather=False) == 1  # ``zhuqi worker --once``
        assert len(_offers(db, second)) == 1

    def test_the_window_over_the_gathered_declines_are_drained(
        self, client: TestClient, db: Session, cast: Cast
    ) -> None:
        gather = timedelta(seconds=0.5)
        worker = self._worker(db, gather)
        self._declined(client, db, cast)
        assert worker.rematch_declined() == 1
        later = [self._declined(client, db, cast) for _ in range(2)]
        time.sleep(gather.total_seconds())
        assert worker.rematch_declined() == 2
        assert [len(_offers(db, r)) for r in later] == [1, 1]
        assert worker.rematch_declined() == 0  # nothing marked: a poll finds nothing

    def test_polls_that_find_nothing_do_not_start_a_window(
        self, client: TestClient, db: Session, cast: Cast
    ) -> None:
        worker = self._worker(db, timedelta(hours=1))
        assert worker.rematch_declined() == 0
        self._declined(client, db, cast)
        assert worker.rematch_declined() == 1


class TestRematchPendingIsShown:
    def test_every_reader_of_the_request_sees_it_pending(
        self, client: TestClient, db: Session, cast: Cast
    ) -> None:
        request = make_request(db, cast.ent)
        db.commit()
        _decline(
            client, cast, _offer_by_hand(client, cast, request.id, cast.expert.id), cast.expert_user
        )

        def seen(user: User) -> tuple[int, Any]:
            one = client.get(f"{API}/requests/{request.id}", headers=cast.headers(user))
            listed = client.get(f"{API}/requests", headers=cast.headers(user)).json()
            rows = [r for r in listed.get("items", []) if r["id"] == request.id]
            body = one.json() if one.status_code == 200 else {}
            return one.status_code, (
                body.get("rematch_pending"),
                [r["rematch_pending"] for r in rows],
            )

        readers = {
            "admin": cast.admin,
            "coordinator": cast.coordinator,
            "enterprise": cast.ent_user,
        }
        assert {k: seen(u) for k, u in readers.items()} == dict.fromkeys(
            readers, (200, (True, [True]))
        )
        for outsider in (cast.other_coordinator, cast.other_ent_user, cast.expert_user):
            assert seen(outsider) == (404, (None, [])), outsider.role
        assert rematch_declined(db) == 1
        assert {k: seen(u) for k, u in readers.items()} == dict.fromkeys(
            readers, (200, (False, [False]))
        )


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_two_drainers_offer_a_request_once(backend: str, tmp_path: Path) -> None:
    """Both workers plan the same marked request; only the one whose compare-and-set clears
    the mark writes an offer. A decline after a plan was made (a new mark) makes that plan
    stale: it is not applied, and the mark waits for the next drain."""
    with own_database(backend, tmp_path) as url:
        engine = make_engine(url)
        sessions = make_session_factory(engine)
        try:
            with sessions() as setup, setup.begin():
                ent = make_enterprise(setup)
                request_id = make_request(setup, ent).id
                providers = [make_provider(setup).id for _ in range(3)]
                users = {
                    p: Principal.of(make_user(setup, Role.EXPERT, provider_id=p)) for p in providers
                }
                staff = Principal.of(make_user(setup, Role.COORDINATOR, region_prefixes=["35"]))
                first = assignment_service.assign_by_hand(
                    setup,
                    principal=staff,
                    data=ManualAssign(request_id=request_id, provider_id=providers[0]),
                )
                assignment_service.decline(
                    setup,
                    principal=users[providers[0]],
                    assignment=first,
                    data=Decline(reason_code="no_capacity"),
                )
            plans = []
            for _ in range(2):
                with sessions() as reader, reader.begin():
                    plans.append(rematch_queue.plan_batch(reader))

            def apply(planned: Any) -> int:
                with sessions() as writer, writer.begin():
                    return rematch_queue.apply_batch(writer, planned)

            with ThreadPoolExecutor(2) as pool:
                assert sorted(pool.map(apply, plans)) == [0, 1]
            with sessions() as check:
                (offer,) = _open(check, request_id)
                assert offer.provider_id != providers[0]
                assert rematch_queue.pending(check) == 0
            with sessions() as again, again.begin():  # the new provider declines too
                assignment_service.decline(
                    again,
                    principal=users[offer.provider_id],
                    assignment=fetch(again, Assignment, offer.id),
                    data=Decline(reason_code="no_capacity"),
                )
            assert apply(plans[1]) == 0  # planned before that decline: stale
            with sessions() as check:
                assert _open(check, request_id) == []
                assert rematch_queue.pending(check) == 1
            assert rematch_queue.drain(begin_each(sessions), begin_each(sessions)) == 1
            with sessions() as check:
                (last,) = _open(check, request_id)
                assert last.provider_id not in (providers[0], offer.provider_id)
        finally:
            engine.dispose()


class TestAFailingRematchIsIsolated:
    """A request whose re-match raises (here: its extra categories are a number, which the
    snapshot cannot read) must not hold up the others: they are offered; it is retried with
    back-off, then given up with a reason coordinators see."""

    def test_the_others_are_offered_and_the_failing_one_is_retried_then_given_up(
        self, client: TestClient, db: Session, cast: Cast
    ) -> None:
        requests = [make_request(db, cast.ent) for _ in range(3)]
        db.commit()
        for request in requests:
            offer = _offer_by_hand(client, cast, request.id, cast.expert.id)
            _decline(client, cast, offer, cast.expert_user)
        poison = requests[1].id
        db.execute(
            text("UPDATE help_requests SET extra_categories = '7' WHERE id = :id"), {"id": poison}
        )

        assert rematch_declined(db) == 3
        assert [len(_offers(db, r.id)) for r in requests] == [1, 0, 1]
        failing = fetch(db, HelpRequest, poison)
        assert failing.rematch_failures == 1
        assert failing.rematch_requested_at is not None
        assert as_utc(failing.rematch_requested_at) > utc_now()  # waits for its retry
        assert rematch_declined(db) == 0  # not due yet

        for attempt in range(2, rematch_queue.ATTEMPTS + 1):
            self._due_now(db, poison)
            assert rematch_declined(db) == 1
            db.expire_all()
            assert fetch(db, HelpRequest, poison).rematch_failures == attempt
        given_up = fetch(db, HelpRequest, poison)
        assert given_up.rematch_requested_at is None
        assert rematch_queue.pending(db) == 0
        assert rematch_declined(db) == 0
        (event,) = db.scalars(
            select(Event).where(Event.entity_id == poison, Event.action == "request.unmatched")
        )
        assert event.after is not None
        assert event.after["reason"] == "rematch_failed"
        assert event.after["error"] == "TypeError"

        db.execute(
            text("UPDATE help_requests SET extra_categories = '[]' WHERE id = :id"), {"id": poison}
        )
        db.commit()
        r = client.get(f"{API}/requests/{poison}", headers=cast.headers(cast.coordinator))
        assert r.status_code == 200, r.text
        assert [u["reason"] for u in r.json()["unmatched"]] == ["rematch_failed"]

    def test_a_new_decline_after_giving_up_starts_the_count_again(
        self, client: TestClient, db: Session, cast: Cast
    ) -> None:
        request = make_request(db, cast.ent)
        db.commit()
        db.execute(
            text("UPDATE help_requests SET rematch_failures = :n WHERE id = :id"),
            {"n": rematch_queue.ATTEMPTS, "id": request.id},
        )
        db.commit()
        offer = _offer_by_hand(client, cast, request.id, cast.expert.id)
        _decline(client, cast, offer, cast.expert_user)
        assert fetch(db, HelpRequest, request.id).rematch_failures == 0
        assert rematch_declined(db) == 1
        assert len(_offers(db, request.id)) == 1

    @staticmethod
    def _due_now(db: Session, request_id: int) -> None:
        """Time passes (the back-off is minutes): the retry's mark is made due."""
        db.execute(
            text("UPDATE help_requests SET rematch_requested_at = :at WHERE id = :id"),
            {"at": utc_now() - timedelta(seconds=1), "id": request_id},
        )
        db.commit()


def _open(session: Session, request_id: int) -> list[Assignment]:
    return list(
        session.scalars(
            select(Assignment).where(
                Assignment.request_id == request_id,
                Assignment.status == AssignmentStatus.OFFERED,
            )
        )
    )


class TestADrainTakesTheMarksMadeBeforeItBegan:
    def test_a_decline_made_while_a_drain_runs_waits_for_the_next_drain(
        self, client: TestClient, db: Session, cast: Cast
    ) -> None:
        """Under a steady stream of declines, a drain that also took the marks made while it
        ran re-planned a few requests per batch, each batch paying the whole fixed cost; the
        marks made meanwhile now wait for the next (gathered) drain, and are not lost."""
        first, later = make_request(db, cast.ent), make_request(db, cast.ent)
        db.commit()
        first_offer = _offer_by_hand(client, cast, first.id, cast.expert.id)
        _decline(client, cast, first_offer, cast.expert_user)
        later_offer = _offer_by_hand(client, cast, later.id, cast.expert.id)
        writes = 0

        @contextmanager
        def write() -> Iterator[Session]:
            nonlocal writes
            writes += 1
            if writes == 1:  # a provider declines as the drain's first batch is written
                _decline(client, cast, later_offer, cast.expert_user)
            with _each(db)() as session:
                yield session

        assert rematch_queue.drain(_each(db), write) == 1
        assert writes == 1
        db.expire_all()
        assert db.get_one(HelpRequest, first.id).rematch_requested_at is None
        assert db.get_one(HelpRequest, later.id).rematch_requested_at is not None  # kept
        assert rematch_queue.drain(_each(db), _each(db)) == 1
        db.expire_all()
        assert db.get_one(HelpRequest, later.id).rematch_requested_at is None
        assert rematch_queue.pending(db) == 0
