"""The words a run speaks: category labels and the glossary, handed in as data.

The taxonomy and the glossary live in the service's database (admins extend both at run
time), so the engine must not hard-code either. A :class:`Lexicon` carries them into a
:class:`matching.Problem`: the labels make every reason name a category the way people do
("融资" / "Financing", never ``financing``), and the glossary feeds the text model and the
evidence a reason quotes. A problem built without one uses the shipped glossary and falls
back to the category key as its label.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from matching.scoring.glossary import Glossary, default_glossary

__all__ = ["Lexicon"]


def _no_labels() -> Mapping[str, tuple[str, str]]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Lexicon:
    """Category labels and the glossary of one problem.

    Attributes
    ----------
    labels : Mapping[str, tuple[str, str]]
        Category key → ``(label_zh, label_en)``. Keys without a label show as themselves.
    glossary : Glossary or None
        Concepts bridging Chinese and English terms; None means the shipped one.
    """

    labels: Mapping[str, tuple[str, str]] = field(default_factory=_no_labels)
    glossary: Glossary | None = None

    def label(self, category: str) -> tuple[str, str]:
        """``(zh, en)`` label of ``category`` (the key itself when unknown)."""
        return self.labels.get(category, (category, category))

    @property
    def terms(self) -> Glossary:
        """The glossary in force: the given one or the shipped default."""
        return default_glossary() if self.glossary is None else self.glossary
