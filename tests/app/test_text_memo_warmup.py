"""The start-up warm-up analyzes exactly the texts a re-match's fit looks up, with the very
glossary object it looks them up with: the first re-match after it finds every provider text
in the engine's memo (counted by the memo itself), and without it misses them."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from app.assignments import rematch
from app.assignments.warmup import start_text_memo_warmup, warm_text_memo
from app.main import create_app
from app.models import GlossaryEntry, Vetting
from matching.scoring.text import clear_token_memo, token_memo_stats
from tests.factories import make_enterprise, make_provider, make_request
from tests.live import BACKENDS, own_database, settings_for


@pytest.fixture(autouse=True)
def cold_process() -> Iterator[None]:
    """A new process's state: no text model fitted, no text analyzed."""
    rematch._TEXT_MODELS.models.clear()
    clear_token_memo()
    yield
    rematch._TEXT_MODELS.models.clear()
    clear_token_memo()


def _sessions(db: Session) -> Callable[[], Session]:
    """Sessions on the test's connection (they see its rows; closing one keeps it open)."""
    return lambda: Session(bind=db.connection())


def _providers(db: Session, n: int) -> list[str]:
    """``n`` vetted financing providers with texts no earlier test analyzed."""
    texts = [f"银行贷款 融资 bank loans {uuid.uuid4().hex[:8]} 第{i}位" for i in range(n)]
    for text in texts:
        make_provider(db, expertise=text, skills={"financing": 3})
    return texts


def _misses_of_a_rematch(db: Session) -> tuple[int, int]:
    request = make_request(db, make_enterprise(db), title="贷款到期", description="银行续贷")
    before = token_memo_stats()
    rematch.rematch_requests(db, request_ids=[request.id], actor=None)
    after = token_memo_stats()
    return after.misses - before.misses, after.hits - before.hits


@pytest.mark.parametrize("admin_glossary", [False, True], ids=["shipped", "extended"])
def test_the_first_rematch_after_the_warmup_finds_every_text(
    db: Session, admin_glossary: bool
) -> None:
    if admin_glossary:  # the memo knows a glossary by identity: a copy would miss them all
        db.add(GlossaryEntry(concept="bridge_loan_test", zh=["过桥贷"], en=["bridge loan"]))
        db.flush()
    texts = _providers(db, 6)

    assert warm_text_memo(_sessions(db), limit=1000) >= len(texts)
    misses, hits = _misses_of_a_rematch(db)

    assert misses == 0
    assert hits >= len(texts)  # the fit did look its texts up


def test_without_the_warmup_the_first_rematch_analyzes_its_texts(db: Session) -> None:
    texts = _providers(db, 6)

    misses, _ = _misses_of_a_rematch(db)

    assert misses >= len(texts)


def test_the_warmup_reads_vetted_providers_only_and_at_most_its_limit(db: Session) -> None:
    _providers(db, 3)
    make_provider(db, expertise=f"未审核 {uuid.uuid4().hex}", vetting=Vetting.PENDING)

    assert warm_text_memo(_sessions(db), limit=2) == 2
    assert token_memo_stats().texts == 2
    clear_token_memo()
    assert warm_text_memo(_sessions(db), limit=1000) == 3


def test_a_zero_limit_switches_the_warmup_off(db: Session) -> None:
    assert start_text_memo_warmup(_sessions(db), limit=0) is None


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_api_process_warms_the_memo_in_the_background(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with own_database(backend, tmp_path_factory.mktemp("warmup")) as url:
        engine = create_engine(url)
        with Session(engine) as session:
            texts = _providers(session, 4)
            session.commit()
        engine.dispose()
        app = create_app(settings_for(url, text_warmup_providers=100))
        with TestClient(app) as client:
            assert client.get("/healthz").status_code == 200
            app.state.text_memo_warmup.thread.join(60)
            assert not app.state.text_memo_warmup.thread.is_alive()
        assert token_memo_stats().texts == len(texts)
