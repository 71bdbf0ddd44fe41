"""Demo enterprises and their help requests, as plain row dicts ready for a bulk INSERT.

The mix follows what a provincial programme sees: most firms are micro or small, most carry no
cultivation tier or the entry-level "innovative SME" label, a few are 专精特新, very few are
little giants or single champions; firms cluster in the industries their county is known for.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from app.common.codes import make_uscc
from app.models import EnterpriseSize, RequestStatus, Severity, Tier
from seed.catalog import Catalog, County, Industry, Lang
from seed.pools import Pools, Weighted, binomial, brand, mobile

# The first enterprise is the one the demo enterprise user logs in as: a Jinjiang shoe maker.
DEMO_COUNTY = "350582"
DEMO_INDUSTRY = "C1951"
DEMO_CATEGORIES = ("financing", "digital_transformation")

SIZES = Weighted.of(
    [EnterpriseSize.MICRO, EnterpriseSize.SMALL, EnterpriseSize.MEDIUM], [45, 40, 15]
)
_TIERS = [Tier.NONE, Tier.INNOVATIVE, Tier.SPECIALISED, Tier.LITTLE_GIANT, Tier.CHAMPION]
TIERS_BY_SIZE = {
    EnterpriseSize.MICRO: Weighted.of(_TIERS, [70, 25, 5, 0, 0]),
    EnterpriseSize.SMALL: Weighted.of(_TIERS, [45, 32, 18, 4.5, 0.5]),
    EnterpriseSize.MEDIUM: Weighted.of(_TIERS, [30, 25, 28, 13, 4]),
}
# Headcount bands of the MIIT size classification for industry (工信部联企业〔2011〕300号).
HEADCOUNT = {
    EnterpriseSize.MICRO: (3, 19),
    EnterpriseSize.SMALL: (20, 299),
    EnterpriseSize.MEDIUM: (300, 999),
}
LEGAL_FORMS = Weighted.of(["有限公司", "股份有限公司", "有限责任公司"], [85, 10, 5])
CATEGORY_WEIGHTS = {
    "financing": 14,
    "cost_reduction": 11,
    "orders_market": 12,
    "receivables": 8,
    "technology_rd": 8,
    "digital_transformation": 10,
    "talent_employment": 9,
    "management": 5,
    "legal_ip": 5,
    "policy": 8,
    "supply_chain": 5,
    "quality_brand": 5,
    "export": 6,
}
# Cultivated firms ask more about R&D, digitalisation and the next tier's policies.
TIER_BOOST = {"technology_rd": 2.0, "digital_transformation": 1.5, "policy": 1.5}
# Traders, hauliers and software houses seldom ask for process R&D, supply-chain or export help.
SERVICE_DAMPING = {
    "technology_rd": 0.2,
    "supply_chain": 0.4,
    "quality_brand": 0.5,
    "export": 0.3,
    "cost_reduction": 0.7,
}
URGENCY = Weighted.of([1, 2, 3, 4, 5], [8, 22, 38, 22, 10])
STATUS = Weighted.of(
    [RequestStatus.SUBMITTED, RequestStatus.TRIAGED, RequestStatus.WITHDRAWN], [55, 42, 3]
)
AMOUNTS_WAN = {  # loan sizes etc. in 万元, by enterprise size
    EnterpriseSize.MICRO: (20, 30, 50, 80, 100),
    EnterpriseSize.SMALL: (100, 150, 200, 300, 500, 800),
    EnterpriseSize.MEDIUM: (500, 800, 1000, 1500, 2000, 3000),
}
ENGLISH_SHARE = 0.2
# Open requests of a major category (technology, digital transformation, supply chain) that
# want a team of two providers, e.g. a process engineer and an automation integrator.
TEAM_SHARE = 0.05
REQUEST_SLOTS = frozenset(
    [
        "product",
        "material",
        "industry",
        "city",
        "county",
        "amount",
        "percent",
        "days",
        "months",
        "count",
        "headcount",
        "years",
        "customer",
        "country",
    ]
)


@dataclass(frozen=True, slots=True)
class EnterpriseDraft:
    """What request generation needs to know about an enterprise besides its row."""

    county: County
    industry: Industry
    size: EnterpriseSize
    tier: Tier
    headcount: int


class EnterpriseGenerator:
    """Generates enterprises, then requests for them, from one ``random.Random`` stream."""

    def __init__(self, catalog: Catalog, pools: Pools, rng: random.Random, now: datetime) -> None:
        self.catalog = catalog
        self.pools = pools
        self.rng = rng
        # Team sizes draw from a stream of their own, seeded from the main one's state
        # without drawing from it, so every other generated value stays as it was. From the
        # state's words as text: ``hash`` of the state tuple would vary between processes
        # (its ``None`` hashes by address on Python 3.11).
        self.teams = random.Random(str(rng.getstate()[1]))
        self.now = now
        self.counties = Weighted.of(catalog.counties, [c.weight for c in catalog.counties])
        industries = list(catalog.industries.values())
        self.industries = Weighted.of(industries, [i.weight for i in industries])
        self.drafts: list[EnterpriseDraft] = []
        self.by_city: dict[str, list[int]] = defaultdict(list)

    # --- enterprises -----------------------------------------------------------------------

    def enterprises(self, count: int) -> list[dict[str, Any]]:
        serials = self.rng.sample(range(10**8, 10**9), count)
        names: set[str] = set()
        rows = []
        for index, serial in enumerate(serials):
            draft = self._draft(index)
            self.drafts.append(draft)
            self.by_city[draft.county.city_code].append(index)
            rows.append(self._row(index, serial, draft, names))
        return rows

    def _draft(self, index: int) -> EnterpriseDraft:
        rng = self.rng
        if index == 0:
            county = self.catalog.county(DEMO_COUNTY)
            industry = self.catalog.industries[DEMO_INDUSTRY]
            size, tier = EnterpriseSize.SMALL, Tier.SPECIALISED
        else:
            county = self.counties.pick(rng)
            if county.industries and rng.random() < 0.6:
                industry = self.catalog.industries[rng.choice(county.industries)]
            else:
                industry = self.industries.pick(rng)
            size = SIZES.pick(rng)
            tier = TIERS_BY_SIZE[size].pick(rng)
        low, high = HEADCOUNT[size]
        headcount = round(low * (high / low) ** rng.random())  # log-uniform: small firms commoner
        return EnterpriseDraft(county, industry, size, tier, headcount)

    def _row(self, index: int, serial: int, d: EnterpriseDraft, names: set[str]) -> dict[str, Any]:
        created = self.now - timedelta(
            days=self.rng.randint(30, 720), seconds=self.rng.randrange(86_400)
        )
        return {
            "name": self._name(d, names),
            "uscc": make_uscc(d.county.code, serial),
            "region_code": d.county.code,
            "industry_code": d.industry.code,
            "size": d.size,
            "tier": d.tier,
            "headcount": d.headcount,
            "description": self._description(d),
            "contact_name": self.pools.person(self.rng),
            "contact_phone": mobile(self.rng),
            "contact_email": f"ent{index + 1:05d}@example.com",
            "created_at": created,
            "updated_at": created,
            "version": 1,
        }

    def _name(self, d: EnterpriseDraft, taken: set[str]) -> str:
        """区划 + 字号 + 行业 + 组织形式, e.g. 晋江鸿达鞋业有限公司; unique within the load."""
        rng, catalog = self.rng, self.catalog
        for attempt in range(50):
            if rng.random() < 0.1:
                place = catalog.provinces[d.county.province_code].short
            else:
                place = d.county.short or catalog.cities[d.county.city_code].short
            trade = brand(rng, catalog.brand_chars)
            if attempt >= 20:  # a crowded county: a three-character trade name
                trade += rng.choice(catalog.brand_chars)
            name = f"{place}{trade}{rng.choice(d.industry.words)}{LEGAL_FORMS.pick(rng)}"
            if name not in taken:
                taken.add(name)
                return name
        raise RuntimeError("could not find a unique company name")  # pragma: no cover

    def _description(self, d: EnterpriseDraft) -> str:
        city = self.catalog.cities[d.county.city_code]
        zh = self.catalog.enterprise_description["zh"].format(
            county_full=city.zh + d.county.zh,
            industry=d.industry.zh,
            product=d.industry.product.zh,
            headcount=d.headcount,
        )
        en = self.catalog.enterprise_description["en"].format(
            industry_en=d.industry.en,
            county_en=d.county.en,
            city_en=city.en,
            product_en=d.industry.product.en,
            headcount=d.headcount,
        )
        return f"{zh}\n{en}"

    # --- help requests ---------------------------------------------------------------------

    def requests(
        self, per_enterprise: float, severities: dict[str, Severity]
    ) -> list[tuple[int, dict[str, Any]]]:
        """(enterprise index, row) pairs; categories come only from ``severities``' keys."""
        rows: list[tuple[int, dict[str, Any]]] = []
        for index, draft in enumerate(self.drafts):
            if index == 0:
                categories = [c for c in DEMO_CATEGORIES if c in severities]
            else:
                categories = self._categories(draft, binomial(self.rng, per_enterprise), severities)
            for category in categories:
                lang: Lang = "zh" if index == 0 or self.rng.random() >= ENGLISH_SHARE else "en"
                rows.append((index, self._request(draft, category, lang, severities[category])))
        return rows

    def _categories(self, d: EnterpriseDraft, k: int, allowed: dict[str, Severity]) -> list[str]:
        """``k`` distinct categories, weighted by how often firms of this tier ask for them."""
        boost = TIER_BOOST if d.tier not in (Tier.NONE, Tier.INNOVATIVE) else {}
        damping = SERVICE_DAMPING if not d.industry.code.startswith("C") else {}
        pool = {
            key: w * boost.get(key, 1.0) * damping.get(key, 1.0)
            for key, w in CATEGORY_WEIGHTS.items()
            if key in allowed and self.catalog.requests.get(key)
        }
        chosen: list[str] = []
        for _ in range(min(k, len(pool))):
            keys = list(pool)
            key = self.rng.choices(keys, weights=[pool[c] for c in keys])[0]
            chosen.append(key)
            del pool[key]
        return chosen

    def _request(
        self, d: EnterpriseDraft, category: str, lang: Lang, severity: Severity
    ) -> dict[str, Any]:
        rng = self.rng
        template = rng.choice(self.catalog.requests[category][lang])
        slots = self.request_slots(d, lang)
        created = self.now - timedelta(seconds=rng.randrange(21 * 86_400))
        wanted = (
            (created + timedelta(days=rng.randint(7, 60))).date() if rng.random() < 0.7 else None
        )
        urgency, status = URGENCY.pick(rng), STATUS.pick(rng)  # in the stream's old order
        team = (
            severity == Severity.MAJOR
            and status != RequestStatus.WITHDRAWN
            and self.teams.random() < TEAM_SHARE
        )
        return {
            "category": category,
            "title": template.title.format_map(slots)[:200],
            "description": template.description.format_map(slots),
            "urgency": urgency,
            "severity": severity,
            "wanted_by_date": wanted,
            "status": status,
            "providers_wanted": 2 if team else 1,
            "created_at": created,
            "updated_at": created,
            "version": 1,
        }

    def request_slots(self, d: EnterpriseDraft, lang: Lang) -> dict[str, str]:
        """Every slot a request template may use (``REQUEST_SLOTS``), in its language."""
        rng, catalog = self.rng, self.catalog
        city = catalog.cities[d.county.city_code]
        wan = rng.choice(AMOUNTS_WAN[d.size])
        return {
            "product": d.industry.product.in_(lang),
            "material": d.industry.material.in_(lang),
            "industry": d.industry.zh if lang == "zh" else _mid_sentence(d.industry.en),
            "city": city.zh if lang == "zh" else city.en,
            "county": city.zh + d.county.zh if lang == "zh" else d.county.en,
            "amount": f"{wan}万元" if lang == "zh" else f"RMB {wan * 10_000:,}",
            "percent": str(rng.randint(8, 40)),
            "days": str(rng.choice((15, 30, 45, 60, 90, 120))),
            "months": str(rng.randint(2, 12)),
            "count": str(rng.randint(5, 60)),
            "headcount": str(d.headcount),
            "years": str(rng.randint(5, 30)),
            "customer": rng.choice(catalog.customers[lang]),
            "country": rng.choice(catalog.countries[lang]),
        }


def _mid_sentence(name: str) -> str:
    """ "Textiles" → "textiles", but "Software and IT services" keeps its IT."""
    return name[:1].lower() + name[1:]
