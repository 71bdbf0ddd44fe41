"""Which help category a free-text problem belongs to: ranked suggestions with evidence.

Most enterprises cannot classify their own problem, so intake suggests one. The model is a
multinomial logistic regression (scikit-learn) over TF-IDF features of
:func:`matching.scoring.text.words` — segmented Chinese words (rjieba, whose dictionary
ships inside the wheel), English words and glossary concepts — so
colloquial Chinese, English and mixed text are classified alike.

It is trained on the labelled corpus shipped in ``matching/scoring/data/category_train.tsv``
(provenance in ``matching/scoring/data/README.md``) at first use and cached for the life of
the process: about 550 short texts train in well under a second, deterministically
(lbfgs, no random state), so no fitted artefact needs shipping. The held-out file
``category_heldout.tsv`` is never used here; ``bench/category_quality.py`` scores on it.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

import numpy as np
from numpy.typing import NDArray
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from matching.scoring.glossary import CONCEPT_PREFIX, Glossary, default_glossary
from matching.scoring.text import words

__all__ = [
    "CategoryModel",
    "Suggestion",
    "default_category_model",
    "fit_category_model",
    "load_corpus",
]

#: How many evidence phrases a suggestion reports.
EVIDENCE = 5
#: Inverse regularisation strength, chosen by 5-fold cross-validation on the training part.
_C = 10.0


@dataclass(frozen=True, slots=True)
class Suggestion:
    """One ranked category: probability ``score`` in [0, 1] and the phrases behind it."""

    category: str
    score: float
    evidence: tuple[str, ...]


def load_corpus(name: str = "category_train.tsv") -> tuple[list[str], list[str]]:
    """``(texts, labels)`` of a shipped corpus file (``category<TAB>text`` per line)."""
    raw = files("matching.scoring").joinpath("data", name).read_text(encoding="utf-8")
    rows = [row for row in csv.reader(raw.splitlines(), delimiter="\t") if row]
    return [text for _, text in rows], [label for label, _ in rows]


@dataclass(frozen=True, slots=True)
class CategoryModel:
    """A fitted vectorizer and classifier over the categories in ``classes``."""

    vectorizer: TfidfVectorizer
    classifier: LogisticRegression
    glossary: Glossary

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(str(c) for c in self.classifier.classes_)

    def probabilities(self, texts: Sequence[str]) -> NDArray[np.float64]:
        """Class probabilities, shape ``(len(texts), len(classes))``; rows sum to 1."""
        matrix = self.vectorizer.transform(list(texts))
        return np.asarray(self.classifier.predict_proba(matrix), dtype=np.float64)

    def suggest(self, text: str) -> list[Suggestion]:
        """Every known category, most likely first (ties by key), with its evidence.

        Evidence for a category is the terms of ``text`` that pushed its score up most
        (TF-IDF weight × class coefficient), as they are written, not as tokens.
        """
        row = self.vectorizer.transform([text])
        probs = np.asarray(self.classifier.predict_proba(row), dtype=np.float64)[0]
        order = sorted(range(len(probs)), key=lambda i: (-probs[i], self.classes[i]))
        columns, weights = row.indices, row.data
        names = self.vectorizer.get_feature_names_out()
        surface = self.glossary.terms_by_concept(text)
        out = []
        for k in order:
            push = weights * self.classifier.coef_[k, columns]
            picked: list[str] = []
            for j in np.argsort(-push, kind="stable"):
                if push[j] <= 0 or len(picked) == EVIDENCE:
                    break
                for phrase in _phrases(str(names[columns[j]]), surface):
                    if not any(phrase in p or p in phrase for p in picked):
                        picked.append(phrase)
            out.append(Suggestion(self.classes[k], round(float(probs[k]), 4), tuple(picked)))
        return out


def _phrases(token: str, surface: dict[str, list[str]]) -> list[str]:
    """What a feature token looks like in the text: a concept stands for its matched terms."""
    if token.startswith(CONCEPT_PREFIX):
        return surface.get(token.removeprefix(CONCEPT_PREFIX), [])
    return [token] if len(token) > 1 else []


def fit_category_model(
    texts: Sequence[str], labels: Sequence[str], glossary: Glossary | None = None
) -> CategoryModel:
    """Fit on labelled ``texts``; deterministic for the same input."""
    gloss = default_glossary() if glossary is None else glossary

    def analyzer(text: str) -> list[str]:
        return words(text, gloss)

    vectorizer = TfidfVectorizer(analyzer=analyzer, sublinear_tf=True, dtype=np.float64)
    matrix = vectorizer.fit_transform(list(texts))
    classifier = LogisticRegression(C=_C, max_iter=2000)
    # One BLAS thread: the fit is tiny, and on a busy machine a thread per core made it
    # 40x slower (0.8 s against 30 s measured here) without changing the result.
    with threadpool_limits(limits=1):
        classifier.fit(matrix, list(labels))
    return CategoryModel(vectorizer, classifier, gloss)


@cache
def default_category_model() -> CategoryModel:
    """The model trained on the shipped corpus (trained once per process, then shared)."""
    texts, labels = load_corpus()
    return fit_category_model(texts, labels)
