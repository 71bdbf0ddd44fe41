"""The category model: deterministic, a full ranking that sums to one, evidence from the text."""

from __future__ import annotations

import numpy as np

from matching.scoring.categorise import default_category_model, fit_category_model, load_corpus


def test_training_is_deterministic() -> None:
    texts, labels = load_corpus()
    a = fit_category_model(texts[::2], labels[::2])
    b = fit_category_model(texts[::2], labels[::2])
    probe = ["原材料涨价、订单却少了，资金回笼慢", "need a patent lawyer"]
    assert np.array_equal(a.probabilities(probe), b.probabilities(probe))


def test_every_category_is_ranked_and_scores_sum_to_one() -> None:
    model = default_category_model()
    ranked = model.suggest("想申报专精特新和高新技术企业认定")
    assert sorted(s.category for s in ranked) == sorted(model.classes)
    assert abs(sum(s.score for s in ranked) - 1) < 1e-3
    assert ranked[0].category == "policy"
    assert [s.score for s in ranked] == sorted((s.score for s in ranked), reverse=True)


def test_evidence_is_written_in_the_text() -> None:
    text = "美国加征关税以后订单被取消，汇率也在波动"
    top = default_category_model().suggest(text)[0]
    assert top.category == "export"
    assert top.evidence
    assert all(phrase.lower() in text.lower() for phrase in top.evidence)


def test_the_corpus_has_forty_texts_per_category_and_a_separate_held_out_part() -> None:
    texts, labels = load_corpus()
    held_texts, held_labels = load_corpus("category_heldout.tsv")
    counts = {c: labels.count(c) for c in set(labels)}
    assert len(counts) == 13
    assert min(counts.values()) >= 40
    assert set(held_labels) == set(labels)
    assert not set(texts) & set(held_texts)
