"""Category suggestion quality on the held-out corpus, against plain TF-IDF as the peer.

Trains :func:`matching.scoring.categorise.fit_category_model` on
``matching/scoring/data/category_train.tsv`` only and scores it on
``category_heldout.tsv`` (written apart, never used for tuning): top-1 and top-3
accuracy, per-category recall and the confusion table (rows = true, columns = predicted
top-1). The named peer is the same logistic regression over plain character 1–2-gram
TF-IDF (no segmenter, no glossary), trained and scored in the same run.

Usage::

    .venv/bin/python bench/category_quality.py
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from matching.scoring.categorise import fit_category_model, load_corpus

SHORT = {
    "financing": "fin",
    "cost_reduction": "cost",
    "orders_market": "ord",
    "receivables": "recv",
    "technology_rd": "tech",
    "digital_transformation": "digi",
    "talent_employment": "talent",
    "management": "mgmt",
    "legal_ip": "legal",
    "policy": "policy",
    "supply_chain": "chain",
    "quality_brand": "qual",
    "export": "export",
}


def top_k(probs: NDArray[np.float64], classes: list[str], truth: list[str], k: int) -> float:
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return float(np.mean([truth[i] in {classes[j] for j in order[i]} for i in range(len(truth))]))


def confusion(predicted: list[str], truth: list[str], classes: list[str]) -> None:
    print("confusion (rows: true, columns: predicted top-1)")
    print(f"{'':>8}" + "".join(f"{SHORT.get(c, c)[:6]:>7}" for c in classes) + "  recall")
    for c in classes:
        row = [
            sum(1 for p, t in zip(predicted, truth, strict=True) if t == c and p == d)
            for d in classes
        ]
        n = sum(row)
        recall = row[classes.index(c)] / n if n else float("nan")
        print(
            f"{SHORT.get(c, c)[:8]:>8}" + "".join(f"{v or '.':>7}" for v in row) + f"  {recall:.2f}"
        )


def build_parser() -> argparse.ArgumentParser:
    """No options: the corpus files are fixed; the README's command parses with this."""
    return argparse.ArgumentParser(description=__doc__.splitlines()[0])


def main() -> None:
    build_parser().parse_args()
    train_x, train_y = load_corpus("category_train.tsv")
    test_x, test_y = load_corpus("category_heldout.tsv")
    print(
        f"train {len(train_x)} texts, held-out {len(test_x)} texts, {len(set(train_y))} categories"
    )

    start = time.perf_counter()
    model = fit_category_model(train_x, train_y)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    probs = model.probabilities(test_x)
    per_text_ms = (time.perf_counter() - start) / len(test_x) * 1000
    classes = list(model.classes)

    peer_vec = TfidfVectorizer(analyzer="char", ngram_range=(1, 2), sublinear_tf=True)
    peer = LogisticRegression(C=10.0, max_iter=2000).fit(peer_vec.fit_transform(train_x), train_y)
    peer_probs = peer.predict_proba(peer_vec.transform(test_x))
    peer_classes = [str(c) for c in peer.classes_]

    print(f"{'model':<44}{'top-1':>8}{'top-3':>8}")
    for name, p, cls in (
        ("zhuqi (rjieba words + glossary concepts, LR)", probs, classes),
        ("peer: plain char 1-2-gram TF-IDF, LR", peer_probs, peer_classes),
    ):
        print(f"{name:<44}{top_k(p, cls, test_y, 1):>8.3f}{top_k(p, cls, test_y, 3):>8.3f}")
    print(f"fit {fit_s:.2f} s on {len(train_x)} texts; {per_text_ms:.2f} ms per suggestion")
    predicted = [classes[i] for i in np.argmax(probs, axis=1)]
    confusion(predicted, test_y, classes)
    misses = [(t, p, x) for x, t, p in zip(test_x, test_y, predicted, strict=True) if t != p]
    print(f"\nmisses ({len(misses)}):")
    for t, p, x in misses:
        print(f"  {t:>22} -> {p:<22} {x}")


if __name__ == "__main__":
    main()
