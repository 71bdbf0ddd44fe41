"""Labelled mini-benchmark: bilingual requests must rank their right expert near the top."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import matching
from matching import Problem, ProviderIn, RequestIn, Weights

DATA = Path(__file__).parent / "data" / "quality.json"


@pytest.fixture(scope="module")
def labelled() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DATA.read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def ranks(labelled: dict[str, Any]) -> dict[str, list[str]]:
    requests = [
        RequestIn(q["id"], q["category"], q["text"], "C17", "350582", f"ent-{q['id']}")
        for q in labelled["requests"]
    ]
    experts = [
        ProviderIn(e["id"], skills=e["skills"], expertise=e["expertise"], capacity=len(requests))
        for e in labelled["experts"]
    ]
    ranked = matching.rank(
        Problem.build(requests=requests, providers=experts), Weights(min_score=0.0)
    )
    return {str(r): [str(c.provider) for c in cands] for r, cands in ranked.items()}


def test_the_set_is_bilingual_and_covers_the_taxonomy(labelled: dict[str, Any]) -> None:
    requests, experts = labelled["requests"], labelled["experts"]
    assert len(requests) >= 50
    assert len(experts) >= 30
    assert {q["category"] for q in requests} == set(matching.CATEGORIES)
    chinese = sum(1 for q in requests if any("\u4e00" <= ch <= "\u9fff" for ch in q["text"]))
    assert 0.4 <= chinese / len(requests) <= 0.6
    assert {q["expert"] for q in requests} <= {e["id"] for e in experts}


def test_top3_recall(labelled: dict[str, Any], ranks: dict[str, list[str]]) -> None:
    hits = [q["expert"] in ranks[q["id"]][:3] for q in labelled["requests"]]
    assert sum(hits) / len(hits) >= 0.9


def test_top1_accuracy(labelled: dict[str, Any], ranks: dict[str, list[str]]) -> None:
    hits = [ranks[q["id"]][0] == q["expert"] for q in labelled["requests"]]
    assert sum(hits) / len(hits) >= 0.8
