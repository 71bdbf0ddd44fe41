"""Re-matches reuse the text model of an earlier re-match of the same categories, and only
when the providers' texts are unchanged: the decisions are those of a fresh fit."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session

from app.assignments import rematch
from app.models import Assignment, AssignmentOrigin, AssignmentStatus
from tests.factories import make_enterprise, make_provider, make_request


@pytest.fixture(autouse=True)
def no_models_yet() -> Iterator[None]:
    rematch._TEXT_MODELS.models.clear()
    yield
    rematch._TEXT_MODELS.models.clear()


def _decided(planned: list[rematch.Planned]) -> list[tuple[int, int, float]]:
    return [
        (int(a.request), int(a.provider), a.score) for g in planned for a in g.result.assignments
    ]


def test_the_next_rematch_of_the_same_categories_reuses_the_model(db: Session) -> None:
    ent = make_enterprise(db)
    make_provider(db, expertise="银行贷款 融资 bank loans", skills={"financing": 3})
    make_provider(db, expertise="股权融资 上市辅导", skills={"financing": 2})
    first = make_request(db, ent, title="贷款到期", description="银行续贷")
    second = make_request(db, ent, title="想做股权融资", description="上市")

    model = rematch.plan(db, request_ids=[first.id])[0].result.text_cache
    reused = rematch.plan(db, request_ids=[second.id])
    again = reused[0].result.text_cache
    assert model is not None
    assert again is not None
    assert again.model is model.model

    rematch._TEXT_MODELS.models.clear()
    assert _decided(rematch.plan(db, request_ids=[second.id])) == _decided(reused)


def test_changed_provider_texts_are_fitted_again(db: Session) -> None:
    ent = make_enterprise(db)
    banker = make_provider(db, expertise="银行贷款 bank loans", skills={"financing": 3})
    make_provider(db, expertise="股权融资 上市辅导", skills={"financing": 2})
    request = make_request(db, ent, title="想做股权融资", description="上市")
    before = rematch.plan(db, request_ids=[request.id])[0].result.text_cache

    banker.expertise = "股权融资 上市辅导 私募"
    db.flush()
    after = rematch.plan(db, request_ids=[request.id])
    refitted = after[0].result.text_cache
    assert before is not None
    assert refitted is not None
    assert refitted.model is not before.model
    rematch._TEXT_MODELS.models.clear()
    assert _decided(rematch.plan(db, request_ids=[request.id])) == _decided(after)


def test_the_warm_up_fits_the_model_a_first_rematch_of_an_offered_category_uses(
    db: Session,
) -> None:
    """A new process's first re-match finds the model the start-up warm-up fitted for the
    categories with open offers, and decides as a fresh fit would."""
    ent = make_enterprise(db)
    banker = make_provider(db, expertise="银行贷款 融资 bank loans", skills={"financing": 3})
    make_provider(db, expertise="股权融资 上市辅导", skills={"financing": 2})
    make_provider(db, expertise="专利 商标", skills={"legal_ip": 3})
    offered = make_request(db, ent, category="financing", status="matched")
    db.add(
        Assignment(
            request_id=offered.id,
            provider_id=banker.id,
            origin=AssignmentOrigin.MANUAL,
            status=AssignmentStatus.OFFERED,
        )
    )
    declined = make_request(db, ent, category="financing", title="想做股权融资", description="上市")
    db.flush()

    assert rematch.warm_text_models(db) == 1  # financing only: legal_ip has no offer
    assert rematch.warm_text_models(db) == 0  # already there
    warmed = rematch._TEXT_MODELS.get(("financing",))
    planned = rematch.plan(db, request_ids=[declined.id])
    used = planned[0].result.text_cache
    assert warmed is not None
    assert used is not None
    assert used.model is warmed.model

    rematch._TEXT_MODELS.models.clear()
    assert _decided(rematch.plan(db, request_ids=[declined.id])) == _decided(planned)
