"""A request's re-match does not depend on the other requests of its batch: each is decided
with the providers and text model of its own category set, as it would be alone. Only
capacity links the parts of a batch, and an offer that no longer fits when it is written
sends its request back to the queue, never into silence."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.assignments import rematch, rematch_queue
from app.models import Provider, Role, User
from tests.app.conftest import Cast
from tests.app.test_rematch_queue import _decline, _each, _offer_by_hand, _offers
from tests.factories import make_enterprise, make_provider, make_request, make_user

# Two categories the cast's providers do not serve: a corner's providers are all there is.
TEXTS = {
    "export": ["外贸 出口 海外市场 订单", "出口退税 报关", "跨境电商 海外仓", "仓储 物流"],
    "legal_ip": ["专利 商标 维权 诉讼", "知识产权 登记 许可", "合同 法律顾问", "劳动 仲裁"],
}
WANTS = {"export": ("出口订单下滑", "想开拓海外市场"), "legal_ip": ("专利被侵权", "商标 维权")}


def _corner(db: Session, region: str, serves: str) -> dict[str, Any]:
    """An enterprise with a request of each category, and providers serving only its region
    (the first of each category offered by hand, then declined)."""
    enterprise = make_enterprise(db, region_code=region)
    corner: dict[str, Any] = {}
    for category, texts in TEXTS.items():
        title, description = WANTS[category]
        request = make_request(
            db, enterprise, category=category, title=title, description=description
        )
        providers: list[Provider] = [
            make_provider(
                db,
                skills={category: 3},
                expertise=text,
                regions=[serves],
                home_region_code=region,
            )
            for text in texts
        ]
        user: User = make_user(db, Role.EXPERT, provider_id=providers[0].id)
        corner[category] = (request.id, [p.id for p in providers], user)
    return corner


def _declined(client: TestClient, cast: Cast, corner: dict[str, Any], category: str) -> None:
    request_id, providers, user = corner[category]
    _decline(client, cast, _offer_by_hand(client, cast, request_id, providers[0]), user)


class TestABatchDecidesEachRequestAsAlone:
    def test_a_request_declined_with_another_category_gets_what_it_gets_alone(
        self, client: TestClient, db: Session, cast: Cast
    ) -> None:
        """Two copies of one corner: the first's export request declined and drained alone,
        the second's together with a legal_ip request, in one batch. The export requests get
        the same provider (role for role) with the very same score and explanation."""
        rematch._TEXT_MODELS.models.clear()
        alone, together = _corner(db, "350582", "3505"), _corner(db, "350203", "3502")
        db.commit()
        _declined(client, cast, alone, "export")
        assert rematch_queue.drain(_each(db), _each(db)) == 1
        _declined(client, cast, together, "export")
        _declined(client, cast, together, "legal_ip")
        assert rematch_queue.drain(_each(db), _each(db)) == 2

        def offer(corner: dict[str, Any], category: str) -> tuple[int, float, Any]:
            request_id, providers, _ = corner[category]
            (made,) = _offers(db, request_id)
            return providers.index(made.provider_id), made.score, made.breakdown["features"]

        assert offer(together, "export") == offer(alone, "export")
        assert offer(together, "legal_ip")[0] != 0  # the declined provider is not offered again

    def test_parts_planned_in_one_batch_do_not_overfill_a_provider_both_want(
        self, db: Session, cast: Cast
    ) -> None:
        """A provider skilled in both categories, with room for one, is the best for both
        requests: the part planned second counts the first part's offer as load."""
        enterprise = make_enterprise(db, region_code="350582")
        requests: list[int] = []
        for category, (title, description) in WANTS.items():
            requests.append(
                make_request(
                    db, enterprise, category=category, title=title, description=description
                ).id
            )
            make_provider(  # the runner-up of its category: weaker in skill and text
                db, skills={category: 1}, expertise="仓储", regions=["3505"]
            )
        both = make_provider(
            db,
            skills={"export": 3, "legal_ip": 3},
            expertise="出口订单 海外市场 专利 商标 维权",
            regions=["3505"],
            capacity=1,
        )
        alone = [rematch.plan(db, request_ids=[r]) for r in requests]
        assert [g.result.assignments[0].provider for (g,) in alone] == [both.id, both.id]

        planned = rematch.plan(db, request_ids=requests)
        chosen = [a.provider for g in planned for a in g.result.assignments]
        assert len(planned) == 2
        assert sorted(int(r) for g in planned for r in g.decided) == sorted(requests)
        assert chosen.count(both.id) == 1
        assert len(chosen) == 2


class TestAnOfferThatNoLongerFitsIsPlannedAgain:
    def test_a_provider_filled_between_plan_and_write_sends_the_request_back(
        self, client: TestClient, db: Session, cast: Cast
    ) -> None:
        corner = _corner(db, "350582", "3505")
        db.commit()
        request_id, providers, _ = corner["export"]
        _declined(client, cast, corner, "export")
        batch = rematch_queue.plan_batch(db)
        assert batch is not None
        (chosen,) = [a.provider for g in batch.planned for a in g.result.assignments]
        for _ in range(db.get_one(Provider, chosen).capacity):  # a concurrent change fills it
            rival = make_request(db, make_enterprise(db), category="export")
            db.commit()
            _offer_by_hand(client, cast, rival.id, int(chosen))

        assert rematch_queue.apply_batch(db, batch) == 0  # taken, but handed back
        assert _offers(db, request_id) == []
        assert rematch_queue.pending(db) == 1
        assert rematch_queue.drain(_each(db), _each(db)) == 1
        (offer,) = _offers(db, request_id)
        assert offer.provider_id not in (providers[0], chosen)
        assert rematch_queue.pending(db) == 0
