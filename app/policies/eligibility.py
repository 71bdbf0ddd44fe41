"""Which catalogue policies an enterprise qualifies for, and why: a plan recommends them.

A reason is read by the enterprise itself, so it says things in words: the tier's and the
size's names, and the categories by their taxonomy labels ("对应诉求：融资、出口"), never keys.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from app.models import Enterprise, Policy

TIER_NAMES = {
    "none": "一般企业",
    "innovative": "创新型中小企业",
    "specialised": "专精特新中小企业",
    "little_giant": "专精特新“小巨人”企业",
    "champion": "制造业单项冠军企业",
}
TIER_NAMES_EN = {
    "none": "ordinary enterprise",
    "innovative": "innovative SME",
    "specialised": "specialised and sophisticated SME",
    "little_giant": "'little giant' enterprise",
    "champion": "manufacturing single-item champion",
}
SIZE_NAMES = {
    "micro": ("微型企业", "micro enterprise"),
    "small": ("小型企业", "small enterprise"),
    "medium": ("中型企业", "medium-sized enterprise"),
}
#: Category key -> (label_zh, label_en), as the taxonomy table holds them.
Labels = Mapping[str, tuple[str, str]]


def _in_force(policy: Policy, on: date) -> bool:
    starts, ends = policy.valid_from_date, policy.valid_until_date
    return (starts is None or starts <= on) and (ends is None or ends >= on)


@dataclass(frozen=True)
class Rule:
    """One policy's conditions as plain values: a publish checks thousands of enterprises
    against the whole catalogue, and reading ORM attributes and enum properties for every
    pair cost more than the checks themselves."""

    policy_id: int
    title: str
    tiers: frozenset[str]
    sizes: frozenset[str]
    industry_prefixes: tuple[str, ...]
    region_prefixes: tuple[str, ...]
    categories: frozenset[str]

    @classmethod
    def of(cls, policy: Policy) -> Rule:
        return cls(
            policy_id=policy.id,
            title=policy.title,
            tiers=frozenset(policy.tiers or ()),
            sizes=frozenset(policy.sizes or ()),
            industry_prefixes=tuple(policy.industry_prefixes or ()),
            region_prefixes=tuple(policy.region_prefixes or ()),
            categories=frozenset(policy.categories or ()),
        )

    def reason(
        self, applicant: Applicant, categories: set[str] | frozenset[str], labels: Labels
    ) -> dict[str, Any] | None:
        """The reason (zh and en) the applicant qualifies, or None. Empty lists mean "any"."""
        reasons_zh: list[str] = []
        reasons_en: list[str] = []
        if self.tiers:
            tier = applicant.tier
            if tier not in self.tiers:
                return None
            reasons_zh.append(f"属于{TIER_NAMES.get(tier, tier)}")
            reasons_en.append(f"a {TIER_NAMES_EN.get(tier, tier)}")
        if self.sizes:
            if applicant.size not in self.sizes:
                return None
            size_zh, size_en = SIZE_NAMES.get(applicant.size, ("", applicant.size))
            reasons_zh.append(f"企业规模符合（{size_zh}）" if size_zh else "企业规模符合")
            reasons_en.append(f"a {size_en}")
        if self.industry_prefixes:
            if not applicant.industry_code.startswith(self.industry_prefixes):
                return None
            reasons_zh.append(f"行业{applicant.industry_code}在支持范围")
            reasons_en.append(f"industry {applicant.industry_code} is supported")
        if self.region_prefixes:
            if not applicant.region_code.startswith(self.region_prefixes):
                return None
            reasons_zh.append("注册地在政策区域内")
            reasons_en.append(f"registered in the policy's region ({applicant.region_code})")
        if self.categories:
            addressed = categories & self.categories
            if not addressed:
                return None
            named = [labels.get(c, (c, c)) for c in sorted(addressed)]
            reasons_zh.append("对应诉求：" + "、".join(zh for zh, _ in named))
            reasons_en.append("addresses " + ", ".join(en for _, en in named))
        return {
            "policy_id": self.policy_id,
            "title": self.title,
            "reason_zh": ";".join(reasons_zh) or "普惠政策",
            "reason_en": "; ".join(reasons_en) or "open to all",
        }


@dataclass(frozen=True)
class Applicant:
    """What eligibility reads of an enterprise (a locked row's columns, no ORM object)."""

    tier: str
    size: str
    industry_code: str
    region_code: str

    @classmethod
    def of(cls, enterprise: Enterprise) -> Applicant:
        return cls(
            enterprise.tier.value,
            enterprise.size.value,
            enterprise.industry_code,
            enterprise.region_code,
        )


class Catalogue:
    """The policies in force on one day, compiled once for a whole batch of enterprises."""

    def __init__(self, policies: Iterable[Policy], on: date, labels: Labels | None = None) -> None:
        self.rules = [Rule.of(p) for p in policies if _in_force(p, on)]
        self.labels: Labels = labels or {}

    def recommend(
        self, applicant: Applicant, categories: set[str] | frozenset[str]
    ) -> list[dict[str, Any]]:
        """Every policy the applicant qualifies for, in catalogue order, with its reason."""
        found = (rule.reason(applicant, categories, self.labels) for rule in self.rules)
        return [r for r in found if r is not None]


def eligibility_reason(
    policy: Policy,
    enterprise: Enterprise,
    categories: set[str],
    on: date,
    labels: Labels | None = None,
) -> dict[str, Any] | None:
    """The reason (zh and en) the enterprise qualifies, or None. Empty lists mean "any"."""
    if not _in_force(policy, on):
        return None
    return Rule.of(policy).reason(Applicant.of(enterprise), categories, labels or {})


def recommend(
    policies: Iterable[Policy],
    enterprise: Enterprise,
    categories: set[str],
    on: date,
    labels: Labels | None = None,
) -> list[dict[str, Any]]:
    """Every policy the enterprise qualifies for now, with its reason in words."""
    return Catalogue(policies, on, labels).recommend(Applicant.of(enterprise), categories)
