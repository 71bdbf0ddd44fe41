"""The words of every reason: what a coordinator or an enterprise reads, in zh and en.

A reason names categories by their labels (never their keys), says the deciding factors in
plain words, most decisive first, and quotes the words that made two texts related:
"同县 · 资深融资专家 · 文本高度相关（贷款、授信）". Everything here turns numbers the
engine already computed into text; nothing is scored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from matching.result import Reason
from matching.scoring.features import RegionLevel
from matching.scoring.lexicon import Lexicon

__all__ = [
    "RULE_WORDS",
    "TEXT_LEVELS",
    "PairFacts",
    "category_words",
    "pair_reason",
    "removed_words",
    "text_words",
    "unmatched_message",
]

_REGION_WORDS = {
    RegionLevel.COUNTY: ("同县", "same county"),
    RegionLevel.CITY: ("同市", "same city"),
    RegionLevel.PROVINCE: ("同省", "same province"),
    RegionLevel.ANYWHERE: ("服务不限地区", "serves anywhere"),
    RegionLevel.REMOTE: ("远程服务", "remote"),
}
_ORIGIN_WORDS = {1: ("人工指定", "pinned"), 2: ("保持原匹配", "kept")}
_LEVEL_WORDS = {3: ("资深", "senior "), 2: ("", ""), 1: ("初级", "junior ")}
_KIND_WORDS = {"platform": ("服务平台", "platform")}
#: Text similarity thresholds and their words, highest first. Set on the text bench
#: (``bench/text_quality.py``): a provider that really fits a colloquial request scores
#: about 0.3 and above against it, an unrelated one rarely above 0.1.
TEXT_LEVELS: tuple[tuple[float, str, str], ...] = (
    (0.35, "文本高度相关", "closely related text"),
    (0.18, "文本相关", "related text"),
    (0.08, "文本略相关", "loosely related text"),
)
#: Hard rules in plain words (zh, en), in funnel order.
RULE_WORDS: Mapping[str, tuple[str, str]] = {
    "category": ("不擅长该类别", "do not cover the category"),
    "inactive": ("停用或暂停", "inactive or paused"),
    "capacity": ("无空余容量", "no free capacity"),
    "region": ("不服务该地区", "do not serve the region"),
    "conflict": ("有利益冲突", "have a conflict of interest"),
    "excluded": ("已被排除", "excluded"),
    "min_score": ("匹配度过低", "score too low"),
}


@dataclass(frozen=True, slots=True)
class PairFacts:
    """What one pair's reason says, already decided by the engine.

    ``contributions`` are the five features' shares of the fit in ``FEATURES`` order
    (skill, text, industry, region, rating); the reason lists the factors by them.
    """

    origin: int  # 0 solved, 1 pinned, 2 kept
    category: str  # the category the provider was matched on
    secondary: bool  # matched on one of the request's extra categories
    level: int  # the provider's skill level in it, 1–3
    kind: str  # "expert" or "platform"
    region: int  # RegionLevel
    industry: str | None  # shared industry code, None when nothing is shared
    any_industry: bool  # the provider serves every industry
    text: float  # text similarity in [0, 1]
    evidence: Sequence[tuple[str, str]]  # (zh, en) words the two texts share
    contributions: Sequence[float]


def text_words(text: float, evidence: Sequence[tuple[str, str]]) -> tuple[str, str] | None:
    """``("文本高度相关（贷款、授信）", "closely related text (loan, credit)")`` or None
    when the texts are too far apart to mention."""
    for threshold, zh, en in TEXT_LEVELS:
        if text >= threshold:
            if not evidence:
                return zh, en
            quoted_zh = "、".join(dict.fromkeys(w for w, _ in evidence))
            english = [w for _, w in evidence if w.isascii()]  # Chinese-only words stay out
            quoted_en = f" ({', '.join(dict.fromkeys(english))})" if english else ""
            return f"{zh}（{quoted_zh}）", f"{en}{quoted_en}"
    return None


def _skill_words(facts: PairFacts, lexicon: Lexicon) -> tuple[str, str]:
    label_zh, label_en = lexicon.label(facts.category)
    adj_zh, adj_en = _LEVEL_WORDS.get(facts.level, ("", ""))
    kind_zh, kind_en = _KIND_WORDS.get(facts.kind, ("专家", "expert"))
    zh, en = f"{adj_zh}{label_zh}{kind_zh}", f"{adj_en}{label_en} {kind_en}"
    if facts.secondary:
        return f"{zh}（次要类别）", f"{en} (secondary category)"
    return zh, en


def _industry_words(facts: PairFacts) -> tuple[str, str] | None:
    if facts.industry:
        return f"同行业{facts.industry}", f"same industry {facts.industry}"
    if facts.any_industry:
        return "行业不限", "any industry"
    return None


def pair_reason(facts: PairFacts, lexicon: Lexicon) -> tuple[str, str]:
    """One line per language: the origin (pinned / kept), then the factors that decided
    the pair, largest contribution first."""
    parts: list[tuple[float, tuple[str, str]]] = [
        (facts.contributions[0], _skill_words(facts, lexicon))
    ]
    said = text_words(facts.text, facts.evidence)
    if said:
        parts.append((facts.contributions[1], said))
    industry = _industry_words(facts)
    if industry:
        parts.append((facts.contributions[2], industry))
    if facts.region in _REGION_WORDS:
        parts.append((facts.contributions[3], _REGION_WORDS[facts.region]))
    ordered = [words for _, words in sorted(parts, key=lambda p: -p[0])]
    if facts.origin in _ORIGIN_WORDS:
        ordered.insert(0, _ORIGIN_WORDS[facts.origin])
    return " · ".join(w[0] for w in ordered), " · ".join(w[1] for w in ordered)


def removed_words(removed: Mapping[str, int]) -> tuple[str, str]:
    """``("地区不符 2，…", "2 do not serve the region, …")`` for the non-zero rule counts."""
    zh = "，".join(f"{n} 位{RULE_WORDS[rule][0]}" for rule, n in removed.items() if n)
    en = ", ".join(f"{n} {RULE_WORDS[rule][1]}" for rule, n in removed.items() if n)
    return zh, en


_MESSAGES: Mapping[Reason, tuple[str, str]] = {
    Reason.CATEGORY: ("没有擅长{cat_zh}的服务方", "no provider covers {cat_en}"),
    Reason.INACTIVE: (
        "擅长{cat_zh}的服务方均已停用或暂停",
        "every provider for {cat_en} is inactive or paused",
    ),
    Reason.CAPACITY: (
        "擅长{cat_zh}的服务方均无空余容量",
        "no provider for {cat_en} has free capacity",
    ),
    Reason.REGION: (
        "擅长{cat_zh}的服务方都不服务地区 {region}，也不能远程服务",
        "no provider for {cat_en} serves region {region} or helps remotely",
    ),
    Reason.CONFLICT: (
        "其余服务方均与企业 {ent} 存在利益冲突",
        "the remaining providers have a conflict of interest with enterprise {ent}",
    ),
    Reason.EXCLUDED: (
        "其余服务方均已被排除",
        "the remaining providers are excluded for this request",
    ),
    Reason.MIN_SCORE: (
        "其余服务方匹配度低于最低分 {min}",
        "the remaining providers score below the minimum {min}",
    ),
    Reason.CAPACITY_TAKEN: (
        "候选服务方的容量已被更高优先级的诉求占用：{taken}",
        "capacity taken by higher-priority requests: {taken}",
    ),
}


def category_words(categories: Sequence[str], lexicon: Lexicon) -> tuple[str, str]:
    """``("「融资」或「法律」", "Financing or Legal")``: labels, never keys."""
    labels = [lexicon.label(c) for c in dict.fromkeys(categories)]
    zh = "或".join(f"「{z}」" for z, _ in labels)
    en = " or ".join(e for _, e in labels)
    return zh, en


def unmatched_message(
    reason: Reason,
    removed: Mapping[str, int],
    categories: Sequence[str],
    lexicon: Lexicon,
    fill: Mapping[str, object],
) -> tuple[str, str]:
    """The unmatched reason in words, with the per-rule counts of providers removed.

    ``categories`` are the request's categories (primary first); ``fill`` supplies
    ``region``, ``ent``, ``min`` and ``taken``.
    """
    cat_zh, cat_en = category_words(categories, lexicon)
    values = {**fill, "cat_zh": cat_zh, "cat_en": cat_en}
    zh, en = (text.format(**values) for text in _MESSAGES[reason])
    if not any(removed.values()):
        return zh, en
    counts_zh, counts_en = removed_words(removed)
    return f"{zh}（已排除的服务方：{counts_zh}）", f"{en} (providers removed: {counts_en})"
