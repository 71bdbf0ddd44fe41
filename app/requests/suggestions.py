"""Category suggestions for free text, in the taxonomy's own labels.

The classifier (:mod:`matching.scoring.categorise`) knows the built-in categories of its
training corpus; categories admins added later are still listed, after the known ones, with
score 0 and no evidence, so the answer always ranks the whole taxonomy.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.taxonomy import service as taxonomy_service
from matching.scoring.categorise import default_category_model

#: A secondary category is suggested when its probability reaches this share.
EXTRA_MIN_SCORE = 0.2
#: At most this many secondary categories are suggested.
EXTRA_MAX = 2


@dataclass(frozen=True)
class CategorySuggestion:
    category: str
    score: float
    label_zh: str
    label_en: str
    evidence: list[str]


def suggest(session: Session, text: str) -> list[CategorySuggestion]:
    """Every category of the taxonomy, most likely first."""
    categories = {c.key: c for c in taxonomy_service.list_categories(session)}
    ranked = [s for s in default_category_model().suggest(text) if s.category in categories]
    seen = {s.category for s in ranked}
    out = [
        CategorySuggestion(
            s.category,
            s.score,
            categories[s.category].name_zh,
            categories[s.category].name_en,
            list(s.evidence),
        )
        for s in ranked
    ]
    out += [
        CategorySuggestion(key, 0.0, c.name_zh, c.name_en, [])
        for key, c in sorted(categories.items())
        if key not in seen
    ]
    return out


def primary_and_extra(session: Session, text: str) -> tuple[str, list[str]]:
    """The top suggestion and the secondary ones strong enough to keep."""
    ranked = suggest(session, text)
    extra = [s.category for s in ranked[1:] if s.score >= EXTRA_MIN_SCORE][:EXTRA_MAX]
    return ranked[0].category, extra
