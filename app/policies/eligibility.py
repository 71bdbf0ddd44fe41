"""Which catalogue policies an enterprise qualifies for, and why: a plan recommends them."""

from __future__ import annotations

from collections.abc import Iterable
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


def _in_force(policy: Policy, on: date) -> bool:
    starts, ends = policy.valid_from_date, policy.valid_until_date
    return (starts is None or starts <= on) and (ends is None or ends >= on)


def eligibility_reason(
    policy: Policy, enterprise: Enterprise, categories: set[str], on: date
) -> dict[str, Any] | None:
    """The reason (zh and en) the enterprise qualifies, or None. Empty lists mean "any"."""
    if not _in_force(policy, on):
        return None
    reasons_zh: list[str] = []
    reasons_en: list[str] = []
    if policy.tiers:
        if enterprise.tier.value not in policy.tiers:
            return None
        reasons_zh.append(f"属于{TIER_NAMES.get(enterprise.tier.value, enterprise.tier.value)}")
        reasons_en.append(f"tier {enterprise.tier.value}")
    if policy.sizes:
        if enterprise.size.value not in policy.sizes:
            return None
        reasons_zh.append("企业规模符合")
        reasons_en.append(f"size {enterprise.size.value}")
    if policy.industry_prefixes:
        if not any(enterprise.industry_code.startswith(p) for p in policy.industry_prefixes):
            return None
        reasons_zh.append(f"行业{enterprise.industry_code}在支持范围")
        reasons_en.append(f"industry {enterprise.industry_code}")
    if policy.region_prefixes:
        if not any(enterprise.region_code.startswith(p) for p in policy.region_prefixes):
            return None
        reasons_zh.append("注册地在政策区域内")
        reasons_en.append(f"region {enterprise.region_code}")
    addressed = categories & set(policy.categories or [])
    if policy.categories and not addressed:
        return None
    if addressed:
        reasons_zh.append("对应诉求:" + "、".join(sorted(addressed)))
        reasons_en.append("addresses " + ", ".join(sorted(addressed)))
    return {
        "policy_id": policy.id,
        "title": policy.title,
        "reason_zh": ";".join(reasons_zh) or "普惠政策",
        "reason_en": "; ".join(reasons_en) or "open to all",
    }


def recommend(
    policies: Iterable[Policy], enterprise: Enterprise, categories: set[str], on: date
) -> list[dict[str, Any]]:
    found = (eligibility_reason(p, enterprise, categories, on) for p in policies)
    return [r for r in found if r is not None]
