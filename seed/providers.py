"""Demo experts, service platforms and declared conflicts of interest, as plain row dicts.

Experts are people at universities, banks, law firms, associations and consultancies; where they
work shapes what they know (a bank's expert knows financing, a law firm's knows IP and debt
collection). Platforms are organisations with a large capacity and a wider reach.
"""

from __future__ import annotations

import random
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from app.models import ProviderKind
from seed.catalog import Catalog, County, Industry, Lang, OrgTemplate, PlatformTemplate, Text
from seed.pools import Pools, Weighted, brand, mobile

# The first expert and the first platform are the demo log-ins: both in Quanzhou, both able
# to serve the first enterprise (a Jinjiang shoe maker asking about financing and digitalisation).
DEMO_EXPERT_COUNTY = "350503"
DEMO_EXPERT_ORG = "{city}中小企业服务中心"
DEMO_EXPERT_SKILLS = {"financing": 3, "digital_transformation": 2, "policy": 2}
DEMO_EXPERT_INDUSTRIES = ["C1951", "C18", "C17"]
DEMO_PLATFORM_COUNTY = "350582"

MANUFACTURING = Text("制造业", "manufacturing")
SKILL_COUNT = Weighted.of([1, 2, 3], [35, 45, 20])
PRIMARY_LEVEL = Weighted.of([1, 2, 3], [15, 45, 40])
OTHER_LEVEL = Weighted.of([1, 2, 3], [40, 45, 15])
EXPERT_CAPACITY = Weighted.of([1, 2, 3, 4, 5], [20, 30, 25, 15, 10])
EXPERTISE_LANGS: Weighted[tuple[Lang, ...]] = Weighted.of(
    [("zh",), ("en",), ("zh", "en")], [80, 10, 10]
)
CONFLICT_SHARE = 0.04


class ProviderGenerator:
    """Generates experts, then platforms, then conflicts, from one ``random.Random`` stream."""

    def __init__(
        self,
        catalog: Catalog,
        pools: Pools,
        rng: random.Random,
        now: datetime,
        categories: Collection[str],
    ) -> None:
        self.catalog = catalog
        self.pools = pools
        self.rng = rng
        self.now = now
        self.categories = sorted(c for c in categories if c in catalog.expertise)
        self.counties = Weighted.of(catalog.counties, [c.weight for c in catalog.counties])
        industries = list(catalog.industries.values())
        self.industries = Weighted.of(industries, [i.weight for i in industries])
        orgs = catalog.organisations
        self.orgs = Weighted.of(orgs, [o.weight for o in orgs])
        self.homes: list[str] = []  # home county of each expert, by index

    # --- experts ---------------------------------------------------------------------------

    def experts(self, count: int) -> list[dict[str, Any]]:
        return [self._expert(index) for index in range(count)]

    def _expert(self, index: int) -> dict[str, Any]:
        rng = self.rng
        if index == 0:
            county = self.catalog.county(DEMO_EXPERT_COUNTY)
            org = next(o for o in self.catalog.organisations if o.zh == DEMO_EXPERT_ORG)
            skills = {k: v for k, v in DEMO_EXPERT_SKILLS.items() if k in self.categories}
            industries = [self.catalog.industries[c] for c in DEMO_EXPERT_INDUSTRIES]
            regions, remote_ok = [county.province_code], True
        else:
            county = self.counties.pick(rng)
            org = self.orgs.pick(rng)
            skills = self._skills(org)
            industries = self._industries(county, rng.choice((0, 1, 1, 2, 2, 3)))
            regions, remote_ok = self._expert_regions(county)
        self.homes.append(county.code)
        codes = [i.code for i in industries]
        if index > 0 and industries and rng.random() < 0.1:
            codes.append("C")  # a generalist who serves any manufacturer too
        return self._provider_row(
            kind=ProviderKind.EXPERT,
            name=self.pools.person(rng),
            organisation=self._fill(org.zh, county),
            expertise=self._expertise(skills, industries, EXPERTISE_LANGS.pick(rng)),
            skills=skills,
            industries=codes,
            regions=regions,
            home_region_code=county.code,
            remote_ok=remote_ok,
            capacity=3 if index == 0 else EXPERT_CAPACITY.pick(rng),
            contact_email=f"expert{index + 1:05d}@example.org",
            rated_share=0.45,
            pausable=index > 0,
        )

    def _skills(self, org: OrgTemplate) -> dict[str, int]:
        """1–3 categories; the first usually one people from this organisation know well."""
        rng = self.rng
        known = [s for s in org.skills if s in self.categories] or self.categories
        primary = rng.choice(known) if rng.random() < 0.85 else rng.choice(self.categories)
        skills = {primary: PRIMARY_LEVEL.pick(rng)}
        for _ in range(SKILL_COUNT.pick(rng) - 1):
            source = known if rng.random() < 0.6 else self.categories
            skills.setdefault(rng.choice(source), OTHER_LEVEL.pick(rng))
        return skills

    def _industries(self, county: County, count: int) -> list[Industry]:
        """Industries served, mostly the home county's clusters; none means any industry."""
        chosen: dict[str, Industry] = {}
        for _ in range(count):
            if county.industries and self.rng.random() < 0.6:
                industry = self.catalog.industries[self.rng.choice(county.industries)]
            else:
                industry = self.industries.pick(self.rng)
            chosen.setdefault(industry.code, industry)
        return sorted(chosen.values(), key=lambda i: i.code)

    def _expert_regions(self, county: County) -> tuple[list[str], bool]:
        """The home city (45%), the home province (35%) or anywhere, remotely (20%)."""
        roll = self.rng.random()
        if roll < 0.45:
            return [county.city_code], self.rng.random() < 0.3
        if roll < 0.80:
            return [county.province_code], self.rng.random() < 0.3
        return [], True

    def _expertise(
        self, skills: dict[str, int], industries: list[Industry], langs: tuple[Lang, ...]
    ) -> str:
        """One sentence per skill, strongest first, in Chinese, English or both."""
        order = sorted(skills, key=lambda k: (-skills[k], k))
        paragraphs = []
        for lang in langs:
            names = [i.zh if lang == "zh" else i.en for i in industries]
            slots = {
                "industries": ("、" if lang == "zh" else ", ").join(names)
                or MANUFACTURING.in_(lang),
                "years": str(self.rng.randint(5, 30)),
            }
            sentences = [
                self.rng.choice(self.catalog.expertise[k][lang]).format_map(slots) for k in order
            ]
            paragraphs.append(
                ("；" if lang == "zh" else "; ").join(sentences) + ("。" if lang == "zh" else ".")
            )
        return "\n".join(paragraphs)

    # --- platforms -------------------------------------------------------------------------

    def platforms(self, count: int, first_index: int) -> list[dict[str, Any]]:
        taken: set[str] = set()
        return [self._platform(n, first_index + n, taken) for n in range(count)]

    def _platform(self, n: int, index: int, taken: set[str]) -> dict[str, Any]:
        rng = self.rng
        if n == 0:
            county = self.catalog.county(DEMO_PLATFORM_COUNTY)
            template = self.catalog.platforms[0]
        else:
            county = self.counties.pick(rng)
            template = rng.choice(self.catalog.platforms)
        industries = self._industries(county, 2)
        regions, remote_ok = self._platform_regions(template, county)
        extra = {
            "industry_word": rng.choice(industries[0].words) if industries else "制造业",
            "industry_words": "、".join(i.zh for i in industries) or "制造业",
            "region_desc": self._region_desc(regions),
        }
        known = [s for s in template.skills if s in self.categories] or self.categories
        picked = rng.sample(known, rng.randint(min(2, len(known)), len(known)))
        return self._provider_row(
            kind=ProviderKind.PLATFORM,
            name=self._unique(self._fill(template.zh, county, extra), taken),
            organisation=self._fill("{city_short}{brand}科技服务有限公司（运营）", county),
            expertise=self._fill(template.description, county, extra),
            skills={s: rng.choice((2, 3)) for s in sorted(picked)},
            industries=[] if rng.random() < 0.4 else [i.code for i in industries],
            regions=regions,
            home_region_code=county.city_code + "00",
            remote_ok=remote_ok,
            capacity=rng.randint(10, 50),
            contact_email=f"platform{index + 1:05d}@example.org",
            rated_share=0.6,
            pausable=False,
        )

    def _platform_regions(
        self, template: PlatformTemplate, county: County
    ) -> tuple[list[str], bool]:
        """City and province platforms serve their area; "multi" adds provinces; "national" all."""
        remote_ok = self.rng.random() < 0.6
        if template.scope == "city":
            return [county.city_code], remote_ok
        if template.scope == "province":
            return [county.province_code], remote_ok
        if template.scope == "multi":
            others = [p for p in self.catalog.provinces if p != county.province_code]
            extra = self.rng.sample(others, self.rng.randint(1, 2))
            return [county.province_code, *sorted(extra)], remote_ok
        return [], True

    def _region_desc(self, regions: list[str]) -> str:
        names = [
            (self.catalog.cities[r] if len(r) == 4 else self.catalog.provinces[r]).zh
            for r in regions
        ]
        if not names:
            return "全国"
        return names[0] if len(names) == 1 else "、".join(names) + "等地"

    @staticmethod
    def _unique(name: str, taken: set[str]) -> str:
        candidate, n = name, 1
        while candidate in taken:
            n += 1
            candidate = f"{name}（{n}号服务站）"
        taken.add(candidate)
        return candidate

    # --- shared ----------------------------------------------------------------------------

    def _fill(self, template: str, county: County, extra: dict[str, str] | None = None) -> str:
        """Fill the organisation and platform slots for a place (only the slots used draw)."""
        city = self.catalog.cities[county.city_code]
        province = self.catalog.provinces[county.province_code]
        slots = {
            "city": city.zh,
            "city_short": city.short,
            "province": province.zh,
            "province_short": province.short,
            **(extra or {}),
        }
        if "{brand}" in template:
            slots["brand"] = brand(self.rng, self.catalog.brand_chars)
        if "{university}" in template:
            universities = self.catalog.universities.get(county.province_code) or ("",)
            slots["university"] = self.rng.choice(universities)
        if "{bank}" in template:
            slots["bank"] = self.rng.choice(self.catalog.banks)
        return template.format_map(slots)

    def _provider_row(self, *, rated_share: float, pausable: bool, **values: Any) -> dict[str, Any]:
        """Complete a row with rating, activity and timestamps (same keys for every row)."""
        rng = self.rng
        rated = rng.random() < rated_share
        paused = pausable and rng.random() < 0.03
        today = self.now.date()
        created = self.now - timedelta(days=rng.randint(30, 540), seconds=rng.randrange(86_400))
        return values | {
            "contact_phone": mobile(rng),
            "active": not (pausable and rng.random() < 0.02),
            "paused_from_date": today - timedelta(days=rng.randint(0, 10)) if paused else None,
            "paused_until_date": today + timedelta(days=rng.randint(5, 30)) if paused else None,
            "rating": round(rng.uniform(3.2, 5.0), 1) if rated else None,
            "rating_count": rng.randint(1, 25) if rated else 0,
            "created_at": created,
            "updated_at": created,
            "version": 1,
        }

    # --- conflicts -------------------------------------------------------------------------

    def conflicts(self, by_city: dict[str, list[int]]) -> list[tuple[int, int, str]]:
        """(expert index, enterprise index, reason): a few experts know a firm near home."""
        rows = []
        for expert, home in enumerate(self.homes):
            neighbours = [e for e in by_city.get(home[:4], []) if e != 0]
            if not neighbours or (expert > 0 and self.rng.random() >= CONFLICT_SHARE):
                continue
            k = min(len(neighbours), self.rng.randint(1, 2))
            for enterprise in sorted(self.rng.sample(neighbours, k)):
                rows.append((expert, enterprise, self.rng.choice(self.catalog.conflict_reasons)))
        return rows
