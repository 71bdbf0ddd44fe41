"""Which catalogue policies an enterprise qualifies for, and why: a plan recommends them.

A reason is read by the enterprise itself, so it says things in words: the tier's and the
size's names, and the categories by their taxonomy labels ("对应诉求：融资、出口"), never keys.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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
    reasons_zh: list[str] = []
    reasons_en: list[str] = []
    if policy.tiers:
        if enterprise.tier.value not in policy.tiers:
            return None
        tier = enterprise.tier.value
        reasons_zh.append(f"属于{TIER_NAMES.get(tier, tier)}")
        reasons_en.append(f"a {TIER_NAMES_EN.get(tier, tier)}")
    if policy.sizes:
        if enterprise.size.value not in policy.sizes:
            return None
        size_zh, size_en = SIZE_NAMES.get(enterprise.size.value, ("", enterprise.size.value))
        reasons_zh.append(f"企业规模符合（{size_zh}）" if size_zh else "企业规模符合")
        reasons_en.append(f"a {size_en}")
    if policy.industry_prefixes:
        if not any(enterprise.industry_code.startswith(p) for p in policy.industry_prefixes):
            return None
        reasons_zh.append(f"行业{enterprise.industry_code}在支持范围")
        reasons_en.append(f"industry {enterprise.industry_code} is supported")
    if policy.region_prefixes:
        if not any(enterprise.region_code.startswith(p) for p in policy.region_prefixes):
            return None
        reasons_zh.append("注册地在政策区域内")
        reasons_en.append(f"registered in the policy's region ({enterprise.region_code})")
    addressed = categories & set(policy.categories or [])
    if policy.categories and not addressed:
        return None
    if addressed:
        named = [(labels or {}).get(c, (c, c)) for c in sorted(addressed)]
        reasons_zh.append("对应诉求：" + "、".join(zh for zh, _ in named))
        reasons_en.append("addresses " + ", ".join(en for _, en in named))
    return {
        "policy_id": policy.id,
        "title": policy.title,
        "reason_zh": ";".join(reasons_zh) or "普惠政策",
        "reason_en": "; ".join(reasons_en) or "open to all",
    }


def recommend(
    policies: Iterable[Policy],
    enterprise: Enterprise,
    categories: set[str],
    on: date,
    labels: Labels | None = None,
) -> list[dict[str, Any]]:
    """Every policy the enterprise qualifies for now, with its reason in words."""
    found = (eligibility_reason(p, enterprise, categories, on, labels) for p in policies)
    return [r for r in found if r is not None]
