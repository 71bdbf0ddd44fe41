"""The curated reference data in ``seed/data/*.json``, parsed once into typed, immutable objects.

The JSON files are the single place a reviewer checks region codes, industry codes, policies and
wording; the generators only sample from what is parsed here, so every code they write is one a
person vetted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any, Literal

DATA_DIR = Path(__file__).parent / "data"

Lang = Literal["zh", "en"]


@dataclass(frozen=True, slots=True)
class Text:
    """One piece of text in both languages the service speaks."""

    zh: str
    en: str

    def in_(self, lang: Lang) -> str:
        return self.zh if lang == "zh" else self.en


@dataclass(frozen=True, slots=True)
class Place:
    """A province or prefecture-level city: full name, English name, and the short form."""

    zh: str
    en: str
    short: str


@dataclass(frozen=True, slots=True)
class County:
    """A county-level division of GB/T 2260 with how many demo firms go there and its clusters."""

    code: str
    zh: str
    en: str
    weight: float
    industries: tuple[str, ...]
    short: str | None

    @property
    def city_code(self) -> str:
        return self.code[:4]

    @property
    def province_code(self) -> str:
        return self.code[:2]


@dataclass(frozen=True, slots=True)
class Industry:
    code: str
    zh: str
    en: str
    weight: float
    words: tuple[str, ...]
    product: Text
    material: Text


@dataclass(frozen=True, slots=True)
class RequestTemplate:
    title: str
    description: str


@dataclass(frozen=True, slots=True)
class OrgTemplate:
    """Where an expert works, and the categories people from there tend to know."""

    zh: str
    weight: float
    skills: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PlatformTemplate:
    """A kind of service platform; ``scope`` is city, province, multi or national."""

    zh: str
    scope: str
    skills: tuple[str, ...]
    description: str


@dataclass(frozen=True, slots=True)
class Catalog:
    provinces: dict[str, Place]
    cities: dict[str, Place]
    counties: tuple[County, ...]
    industries: dict[str, Industry]
    requests: dict[str, dict[Lang, tuple[RequestTemplate, ...]]]
    expertise: dict[str, dict[Lang, tuple[str, ...]]]
    organisations: tuple[OrgTemplate, ...]
    universities: dict[str, tuple[str, ...]]
    banks: tuple[str, ...]
    platforms: tuple[PlatformTemplate, ...]
    brand_chars: str
    customers: dict[Lang, tuple[str, ...]]
    countries: dict[Lang, tuple[str, ...]]
    conflict_reasons: tuple[str, ...]
    enterprise_description: dict[Lang, str]
    policies: tuple[dict[str, Any], ...]

    def county(self, code: str) -> County:
        return next(c for c in self.counties if c.code == code)


def _read(name: str) -> Any:
    with (DATA_DIR / name).open(encoding="utf-8") as handle:
        return json.load(handle)


def _text(raw: dict[str, str]) -> Text:
    return Text(zh=raw["zh"], en=raw["en"])


def _bilingual(raw: dict[str, list[str]]) -> dict[Lang, tuple[str, ...]]:
    return {"zh": tuple(raw["zh"]), "en": tuple(raw["en"])}


def _regions() -> tuple[dict[str, Place], dict[str, Place], tuple[County, ...]]:
    raw = _read("regions.json")
    provinces = {k: Place(v["zh"], v["en"], v["short"]) for k, v in raw["provinces"].items()}
    cities = {k: Place(v["zh"], v["en"], v["short"]) for k, v in raw["cities"].items()}
    counties = tuple(
        County(
            code=c["code"],
            zh=c["zh"],
            en=c["en"],
            weight=float(c["weight"]),
            industries=tuple(c["industries"]),
            short=c.get("short"),
        )
        for c in raw["counties"]
    )
    return provinces, cities, counties


def _industries() -> dict[str, Industry]:
    return {
        i["code"]: Industry(
            code=i["code"],
            zh=i["zh"],
            en=i["en"],
            weight=float(i["weight"]),
            words=tuple(i["words"]),
            product=_text(i["product"]),
            material=_text(i["material"]),
        )
        for i in _read("industries.json")["industries"]
    }


def _policy_row(raw: dict[str, Any]) -> dict[str, Any]:
    """A ``policies`` row: the English title and summary follow the Chinese ones."""

    def day(value: str | None) -> date | None:
        return date.fromisoformat(value) if value else None

    return {
        "title": raw["title"],
        "summary": f"{raw['summary']}\n\n{raw['title_en']}: {raw['summary_en']}",
        "issuer": raw["issuer"],
        "url": raw.get("url", ""),
        "tiers": list(raw["tiers"]),
        "sizes": list(raw["sizes"]),
        "industry_prefixes": list(raw["industry_prefixes"]),
        "region_prefixes": list(raw["region_prefixes"]),
        "categories": list(raw["categories"]),
        "valid_from_date": day(raw["valid_from"]),
        "valid_until_date": day(raw["valid_until"]),
    }


def _templates(raw: dict[str, Any]) -> dict[str, Any]:
    """The template file's sections, typed."""
    return {
        "requests": {
            cat: {lang: tuple(RequestTemplate(**t) for t in by_lang[lang]) for lang in ("zh", "en")}
            for cat, by_lang in raw["requests"].items()
        },
        "expertise": {cat: _bilingual(by_lang) for cat, by_lang in raw["expertise"].items()},
        "organisations": tuple(
            OrgTemplate(o["zh"], float(o["weight"]), tuple(o["skills"]))
            for o in raw["organisations"]
        ),
        "platforms": tuple(
            PlatformTemplate(p["zh"], p["scope"], tuple(p["skills"]), p["description"])
            for p in raw["platforms"]
        ),
        "universities": {k: tuple(v) for k, v in raw["universities"].items()},
        "banks": tuple(raw["banks"]),
        "brand_chars": raw["brand_chars"],
        "customers": _bilingual(raw["customers"]),
        "countries": _bilingual(raw["countries"]),
        "conflict_reasons": tuple(raw["conflict_reasons"]),
        "enterprise_description": dict(raw["enterprise_descriptions"]),
    }


@cache
def load_catalog() -> Catalog:
    """Parse the data files once per process; the result is immutable and shared."""
    provinces, cities, counties = _regions()
    policies = tuple(_policy_row(p) for p in _read("policies.json")["policies"])
    return Catalog(
        provinces=provinces,
        cities=cities,
        counties=counties,
        industries=_industries(),
        policies=policies,
        **_templates(_read("templates.json")),
    )
