"""Text ranking quality on colloquial requests against providers, with plain TF-IDF as the peer.

The held-out set (``bench/data/text_heldout.json``, provenance in its ``about``) pairs 36
requests written in the voice of enterprises with the providers that can solve them, out
of 20 providers described in their own words. Nothing is fitted or tuned on it: each model
is fitted on the providers' texts only, exactly as a run fits it.

Part 1 ranks all 20 providers per request by text similarity alone and prints recall@1
(the top provider is a relevant one), recall@3 (a relevant one is in the top 3) and MRR
(mean reciprocal rank of the first relevant one), plus the mean similarity of the best
relevant and the best irrelevant provider, for:

* ``zhuqi`` — the engine's text model (words + bigrams + glossary concepts);
* ``chars+glossary`` — the former analyzer (character unigrams + bigrams + concepts);
* ``plain tf-idf`` — the named peer: character 1–2-gram TF-IDF, no segmenter, no glossary.

Part 2 justifies the default feature weights. Each request is filed under the best
category of its first relevant provider (the others' categories as secondary ones); the
candidates are the providers covering one of them, as the engine's hard rule has it, in
a county of Quanzhou (350582). They are ranked by the full fit with the default weights
and with the text weight scaled, so that the share of text in the score is varied while
the others keep their proportions; recall@1 and MRR of each setting are printed.

Usage::

    .venv/bin/python bench/text_quality.py
    .venv/bin/python bench/text_quality.py --text-weights 0 0.15 0.3 0.45 0.6
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.feature_extraction.text import TfidfVectorizer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import matching
from matching.scoring import text as text_module
from matching.scoring.glossary import default_glossary
from matching.scoring.text import fit_text_model, normalise

DATA = Path(__file__).resolve().parent / "data" / "text_heldout.json"
_CJK = "\u3400"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="held-out set (JSON)")
    parser.add_argument(
        "--text-weights",
        type=float,
        nargs="+",
        default=[0.0, 0.15, 0.3, 0.45, 0.6, 0.9],
        help="text weights to compare in part 2 (the other weights keep their defaults)",
    )
    return parser


def _chars_and_concepts(text: str) -> list[str]:
    """The engine's analyzer before word features: CJK unigrams + bigrams, Latin words,
    concepts (kept here as the 'before' reference)."""
    norm = normalise(text)
    tokens: list[str] = []
    for run in text_module._RUNS.findall(norm):
        if run[0] >= _CJK:
            tokens.extend(run)
            tokens.extend(map(str.__add__, run[:-1], run[1:]))
        elif len(run) > 1:
            tokens.append(run)
    tokens.extend(default_glossary().concepts(norm))
    return tokens


Similarity = Callable[[Sequence[str], Sequence[str]], NDArray[np.float64]]


def _tfidf(vectorizer: TfidfVectorizer) -> Similarity:
    def similarity(providers: Sequence[str], requests: Sequence[str]) -> NDArray[np.float64]:
        p = vectorizer.fit_transform(providers)
        return np.asarray((vectorizer.transform(requests) @ p.T).toarray())

    return similarity


def _engine(providers: Sequence[str], requests: Sequence[str]) -> NDArray[np.float64]:
    model = fit_text_model(providers)
    return np.asarray((model.transform(requests) @ model.providers.T).toarray())


MODELS: dict[str, Similarity] = {
    "zhuqi": _engine,
    "chars+glossary": _tfidf(TfidfVectorizer(analyzer=_chars_and_concepts, sublinear_tf=True)),
    "plain tf-idf": _tfidf(
        TfidfVectorizer(
            analyzer="char", ngram_range=(1, 2), sublinear_tf=True, preprocessor=normalise
        )
    ),
}


def ranking(scores: NDArray[np.float64], relevant: list[set[int]]) -> dict[str, float]:
    """recall@1, recall@3 and MRR of ``scores`` (requests × providers); ties by index."""
    order = np.argsort(-scores, axis=1, kind="stable")
    first = [
        next(rank for rank, j in enumerate(row.tolist()) if j in rel)
        for row, rel in zip(order, relevant, strict=True)
    ]
    return {
        "recall@1": float(np.mean([f == 0 for f in first])),
        "recall@3": float(np.mean([f < 3 for f in first])),
        "mrr": float(np.mean([1.0 / (f + 1) for f in first])),
    }


def separation(scores: NDArray[np.float64], relevant: list[set[int]]) -> tuple[float, float]:
    """Mean over requests of the best relevant and the best irrelevant similarity."""
    best_rel, best_irr = [], []
    for row, rel in zip(scores, relevant, strict=True):
        mask = np.zeros(len(row), dtype=bool)
        mask[list(rel)] = True
        best_rel.append(row[mask].max())
        best_irr.append(row[~mask].max())
    return float(np.mean(best_rel)), float(np.mean(best_irr))


def text_part(data: dict[str, Any]) -> None:
    providers = [p["text"] for p in data["providers"]]
    index = {p["id"]: j for j, p in enumerate(data["providers"])}
    requests = [r["text"] for r in data["requests"]]
    relevant = [{index[x] for x in r["relevant"]} for r in data["requests"]]
    print(f"part 1: text alone, {len(requests)} requests x {len(providers)} providers")
    print(f"{'model':<16}{'recall@1':>9}{'recall@3':>9}{'MRR':>7}{'best rel':>10}{'best irr':>10}")
    for name, similarity in MODELS.items():
        start = time.perf_counter()
        scores = similarity(providers, requests)
        m = ranking(scores, relevant)
        rel, irr = separation(scores, relevant)
        print(
            f"{name:<16}{m['recall@1']:>9.3f}{m['recall@3']:>9.3f}{m['mrr']:>7.3f}"
            f"{rel:>10.3f}{irr:>10.3f}   ({time.perf_counter() - start:.2f} s)"
        )


def _problem(data: dict[str, Any]) -> tuple[matching.Problem, dict[str, set[str]]]:
    by_id = {p["id"]: p for p in data["providers"]}
    providers = [
        matching.ProviderIn(
            id=p["id"],
            skills=p["skills"],
            expertise=p["text"],
            regions=(p["region"],) if p["region"] else (),
            capacity=100,
        )
        for p in data["providers"]
    ]
    requests, relevant = [], {}
    for i, r in enumerate(data["requests"]):
        cats = []
        for pid in r["relevant"]:
            skills = by_id[pid]["skills"]
            cats.append(max(sorted(skills), key=lambda c: skills[c]))
        requests.append(
            matching.RequestIn(
                id=f"r{i}",
                category=cats[0],
                extra_categories=tuple(dict.fromkeys(c for c in cats[1:] if c != cats[0])),
                text=r["text"],
                industry="C",
                region="350582",
                enterprise=f"e{i}",
            )
        )
        relevant[f"r{i}"] = set(r["relevant"])
    return matching.Problem.build(requests=requests, providers=providers), relevant


def weights_part(data: dict[str, Any], text_weights: list[float]) -> None:
    problem, relevant = _problem(data)
    default = matching.Weights(min_score=0.0, top_k=50)
    print()
    print("part 2: full fit among the providers covering the request's categories")
    print(f"{'text weight':>12}{'text share':>11}{'recall@1':>9}{'MRR':>7}")
    for w_text in text_weights:
        weights = replace(default, text=w_text)
        ranked = matching.rank(problem, weights)
        first = []
        for rid, candidates in ranked.items():
            ids = [c.provider for c in candidates]
            hit = [k for k, pid in enumerate(ids) if pid in relevant[str(rid)]]
            first.append(hit[0] if hit else len(ids))
        share = weights.normalised[1]
        mark = "  <- default" if w_text == matching.Weights().text else ""
        r1 = np.mean([f == 0 for f in first])
        mrr = np.mean([1.0 / (f + 1) for f in first])
        print(f"{w_text:>12.2f}{share:>11.2f}{r1:>9.3f}{mrr:>7.3f}{mark}")


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    data = json.loads(args.data.read_text(encoding="utf-8"))
    print(f"load average {os.getloadavg()[0]:.2f}")
    text_part(data)
    weights_part(data, args.text_weights)


if __name__ == "__main__":
    main()
