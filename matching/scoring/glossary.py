"""A small bilingual skill glossary that bridges Chinese and English text features.

Character n-grams cannot tell that 数据库 and "database" mean the same thing. The glossary
(shipped as ``matching/scoring/data/glossary.json``) lists concepts with their Chinese and English
terms; :meth:`Glossary.concepts` finds every term in a normalised text and returns the
concept tokens (``"§database"``), which the text analyzer adds on *both* sides, so a
Chinese request and an English expertise that name the same concept share a token.

Terms with any non-ASCII character match as substrings (Chinese has no word breaks);
ASCII terms match whole words, with an optional plural ``s``/``es``. Longer terms win
over shorter ones starting at the same position (数据库 before 数据).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

__all__ = ["CONCEPT_PREFIX", "Glossary", "default_glossary", "extended_glossary", "shipped_data"]

#: Prefix of concept tokens; it cannot occur in analyzed text, so tokens never collide.
CONCEPT_PREFIX = "§"


def _alternation(terms: list[str]) -> str:
    """Regex matching any of ``terms``, shaped as a trie; longest match preferred.

    A flat ``a|b|c…`` alternation makes the regex engine try every term at every position
    (~60 µs per text for ~500 terms); the trie shares prefixes, so most positions fail on
    their first character. Optional tails are greedy, so 数据库 wins over 数据.
    """
    trie: dict[str, Any] = {}
    for term in terms:
        node = trie
        for char in term:
            node = node.setdefault(char, {})
        node[""] = {}

    def build(node: dict[str, Any]) -> str:
        branches = [re.escape(ch) + build(child) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if "" in node else body

    return build(trie)


@dataclass(frozen=True, slots=True)
class Glossary:
    """Compiled glossary: a trie regex per script and the concepts each term names.

    Two patterns rather than one: a single alternation of both would start with a
    look-behind, which disables the regex engine's first-character scan (4× slower).
    """

    wide: re.Pattern[str]
    word: re.Pattern[str]
    concepts_of: Mapping[str, tuple[str, ...]]
    names: Mapping[str, tuple[str, str]]  # concept -> (first zh term, first en term)

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Glossary:
        """Build from the JSON form ``{"concepts": [{"id", "zh": [...], "en": [...]}]}``."""
        of: dict[str, list[str]] = {}
        names: dict[str, tuple[str, str]] = {}
        for concept in data["concepts"]:
            zh, en = list(concept.get("zh", ())), list(concept.get("en", ()))
            first = (zh or en or [concept["id"]])[0], (en or zh or [concept["id"]])[0]
            names.setdefault(concept["id"], first)
            for term in [*concept.get("zh", ()), *concept.get("en", ())]:
                key = " ".join(term.lower().split())
                ids = of.setdefault(key, [])
                if concept["id"] not in ids:
                    ids.append(concept["id"])
        wide = [t for t in of if not t.isascii()]
        ascii_terms = [t for t in of if t.isascii()]
        never = r"(?!x)x"
        word = rf"(?<![a-z0-9])({_alternation(ascii_terms)})(?:e?s)?(?![a-z0-9])"
        return cls(
            wide=re.compile(_alternation(wide) if wide else never),
            word=re.compile(word if ascii_terms else never),
            concepts_of={t: tuple(ids) for t, ids in of.items()},
            names=names,
        )

    def concepts(self, normalised: str) -> list[str]:
        """Concept tokens (with :data:`CONCEPT_PREFIX`) of every term occurrence.

        ``normalised`` must already be NFKC-folded, lower-cased and whitespace-collapsed
        (what :func:`matching.scoring.text.normalise` returns). A term naming several concepts
        yields all of them; repeated occurrences repeat the tokens (term frequency).
        """
        of = self.concepts_of
        terms = [*self.wide.findall(normalised), *self.word.findall(normalised)]
        return [CONCEPT_PREFIX + c for term in terms for c in of[term]]

    def terms_by_concept(self, text: str) -> dict[str, list[str]]:
        """Concept id → the terms of it found in ``text`` (normalised here), first seen first."""
        norm = " ".join(text.lower().split())
        found: dict[str, list[str]] = {}
        for term in [*self.wide.findall(norm), *self.word.findall(norm)]:
            for concept in self.concepts_of[term]:
                terms = found.setdefault(concept, [])
                if term not in terms:
                    terms.append(term)
        return found

    def name(self, token: str) -> tuple[str, str]:
        """``(zh, en)`` words for a token: a concept token's first Chinese and English
        terms, any other token itself (what a reason quotes as evidence)."""
        if token.startswith(CONCEPT_PREFIX):
            concept = token[len(CONCEPT_PREFIX) :]
            return self.names.get(concept, (concept, concept))
        return token, token

    def __len__(self) -> int:
        return len({c for names in self.concepts_of.values() for c in names})


@cache
def shipped_data() -> Mapping[str, Any]:
    """The shipped glossary's JSON form (read once; treat it as read-only)."""
    text = files("matching.scoring").joinpath("data/glossary.json").read_text(encoding="utf-8")
    data: Mapping[str, Any] = json.loads(text)
    return data


@cache
def default_glossary() -> Glossary:
    """The shipped glossary (parsed once; the result is immutable)."""
    return Glossary.from_data(shipped_data())


@cache
def extended_glossary(
    entries: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...],
) -> Glossary:
    """The shipped glossary plus ``entries`` ``(concept, zh terms, en terms)``: an entry
    naming a shipped concept adds terms to it, any other is a new concept. Cached on the
    entries, so a service that passes the same ones every run compiles them once."""
    added = [{"id": c, "zh": list(zh), "en": list(en)} for c, zh, en in entries]
    return Glossary.from_data({"concepts": [*shipped_data()["concepts"], *added]})
