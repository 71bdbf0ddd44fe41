"""Seeded synthetic matching problems for benchmarks (bilingual texts, real code shapes).

Sizes are free; shapes follow what a provincial deployment sees: ~2,500 counties in 31
provinces, GB/T 4754 codes at division/class level, providers with 1–3 skills, most
serving a province or a city, some anywhere or remote, capacities 1–5 (experts) and 10–40
(platforms), a few paused or inactive, a few conflicts and exclusions.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from matching import CATEGORIES, Exclusion, Problem, ProviderTable, RequestTable, Tier

__all__ = ["PHRASES", "make_problem"]

#: Per category: Chinese and English phrases the texts are composed from.
PHRASES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "financing": (
        ("银行贷款续贷", "股权融资", "融资担保", "风险投资对接", "信贷额度不足", "科创板上市辅导"),
        (
            "bank loan renewal",
            "equity financing",
            "credit guarantee",
            "venture capital",
            "credit line",
            "ipo preparation",
        ),
    ),
    "cost_reduction": (
        ("原材料涨价", "物流成本高", "节能降耗", "精益生产", "电费负担重", "采购成本控制"),
        (
            "raw material prices",
            "logistics cost",
            "energy saving",
            "lean manufacturing",
            "electricity bills",
            "procurement cost control",
        ),
    ),
    "orders_market": (
        ("订单下滑", "开拓国内市场", "电商渠道", "政府采购投标", "展会对接", "大客户开发"),
        (
            "falling orders",
            "new market channels",
            "ecommerce sales",
            "government tender",
            "trade fair",
            "key account development",
        ),
    ),
    "receivables": (
        ("应收账款拖欠", "欠款催收", "回款周期长", "账款纠纷诉讼", "大企业拖欠", "清欠协调"),
        (
            "overdue receivables",
            "debt collection",
            "late payment",
            "payment dispute litigation",
            "arrears from large buyers",
            "receivable mediation",
        ),
    ),
    "technology_rd": (
        ("技术攻关", "新材料研发", "工艺改进", "产学研合作", "芯片设计", "配方优化"),
        (
            "technical problem",
            "new material research",
            "process engineering",
            "university cooperation",
            "chip design",
            "formulation improvement",
        ),
    ),
    "digital_transformation": (
        ("数据库建设", "ERP上线", "MES系统", "智能工厂改造", "工业互联网", "数据分析报表"),
        (
            "database design",
            "erp rollout",
            "manufacturing execution system",
            "smart factory",
            "industrial internet",
            "data analytics dashboard",
        ),
    ),
    "talent_employment": (
        ("招工难", "技能培训", "人才引进", "劳动合同纠纷", "薪酬绩效设计", "学徒制"),
        (
            "hiring workers",
            "skills training",
            "talent recruitment",
            "labour dispute",
            "compensation design",
            "apprenticeship",
        ),
    ),
    "management": (
        ("管理提升", "流程优化", "战略规划", "财务管理", "内控审计", "家族企业传承"),
        (
            "management improvement",
            "process improvement",
            "strategic planning",
            "financial management",
            "internal control audit",
            "family business succession",
        ),
    ),
    "legal_ip": (
        ("专利申请", "商标注册", "知识产权侵权", "合同审查", "合规风险", "专利布局"),
        (
            "patent application",
            "trademark registration",
            "ip infringement",
            "contract review",
            "compliance risk",
            "patent portfolio",
        ),
    ),
    "policy": (
        (
            "政策申报",
            "专精特新认定",
            "高新技术企业申报",
            "研发费用加计扣除",
            "专项资金补贴",
            "小巨人申报",
        ),
        (
            "policy application",
            "specialised and new certification",
            "high-tech enterprise",
            "super deduction",
            "subsidy application",
            "little giant application",
        ),
    ),
    "supply_chain": (
        ("供应链断供", "国产替代", "供应商开发", "上下游配套", "库存积压", "产业链协同"),
        (
            "supply disruption",
            "import substitution",
            "supplier development",
            "upstream and downstream",
            "inventory backlog",
            "industrial chain",
        ),
    ),
    "quality_brand": (
        ("质量管理体系", "ISO9001认证", "良品率提升", "品牌建设", "检测认证", "包装设计"),
        (
            "quality management",
            "iso 9001 certification",
            "yield improvement",
            "brand building",
            "testing and inspection",
            "packaging design",
        ),
    ),
    "export": (
        ("出口报关", "跨境电商", "反倾销应对", "汇率风险", "海外市场开拓", "出口信用保险"),
        (
            "customs clearance",
            "cross-border ecommerce",
            "anti-dumping response",
            "exchange rate risk",
            "overseas market",
            "credit insurance",
        ),
    ),
}
_FILLER = (
    ("我们公司", "急需专家帮助", "目前遇到困难", "希望尽快解决"),
    ("our company", "needs expert help", "facing difficulties", "urgently"),
)
_DIVISIONS = (*tuple(f"C{d}" for d in range(13, 44)), "A01", "E47", "F51", "I65", "M73")


def _counties(rng: np.random.Generator) -> NDArray[np.str_]:
    codes = [
        f"{prov:02d}{city:02d}{county:02d}"
        for prov in range(11, 66, 2)
        for city in range(1, 1 + int(rng.integers(6, 14)))
        for county in range(1, 1 + int(rng.integers(4, 12)))
    ]
    return np.array(codes)


def _text(rng: np.random.Generator, category: str, n_phrases: int) -> str:
    lang = int(rng.integers(2))
    own = PHRASES[category][lang]
    other = PHRASES[CATEGORIES[int(rng.integers(len(CATEGORIES)))]][lang]
    picks = [own[i] for i in rng.choice(len(own), size=n_phrases, replace=False)]
    picks.append(other[int(rng.integers(len(other)))])
    picks.append(_FILLER[lang][int(rng.integers(len(_FILLER[lang])))])
    return ("，" if lang == 0 else ", ").join(picks)


def _industry(rng: np.random.Generator, n: int) -> NDArray[np.object_]:
    division = rng.choice(np.array(_DIVISIONS), size=n)
    detail = rng.integers(10, 100, size=n)
    deep = rng.random(n) < 0.7
    return np.array(
        [d + f"{x}" if k else d for d, x, k in zip(division, detail, deep, strict=True)],
        dtype=object,
    )


def _requests(rng: np.random.Generator, n: int, counties: NDArray[np.str_]) -> RequestTable:
    cats = rng.choice(len(CATEGORIES), size=n, p=_category_mix())
    tiers = [t.value for t in Tier]
    return RequestTable(
        id=np.array([f"r{i:06d}" for i in range(n)], dtype=object),
        category=np.array([CATEGORIES[c] for c in cats], dtype=object),
        text=np.array([_text(rng, CATEGORIES[c], 2) for c in cats], dtype=object),
        industry=_industry(rng, n),
        region=rng.choice(counties, size=n).astype(object),
        urgency=rng.integers(1, 6, size=n),
        tier=rng.choice(np.array(tiers, dtype=object), size=n, p=[0.6, 0.2, 0.12, 0.06, 0.02]),
        enterprise=np.array(
            [f"e{i:06d}" for i in rng.integers(0, max(n // 2, 1), size=n)], dtype=object
        ),
    )


def _category_mix() -> NDArray[np.float64]:
    weights = 1.0 / np.arange(1, len(CATEGORIES) + 1) ** 0.5
    return np.asarray(weights / weights.sum(), dtype=np.float64)


def _served_regions(
    rng: np.random.Generator, n: int, counties: NDArray[np.str_]
) -> tuple[tuple[str, ...], ...]:
    kind = rng.choice(4, size=n, p=[0.15, 0.45, 0.3, 0.1])  # anywhere, province, city, county
    home = rng.choice(counties, size=n)
    cut = {1: 2, 2: 4, 3: 6}
    return tuple(
        () if k == 0 else (str(h)[: cut[int(k)]],) for k, h in zip(kind, home, strict=True)
    )


def _providers(
    rng: np.random.Generator, n: int, counties: NDArray[np.str_], n_ent: int
) -> ProviderTable:
    platform = rng.random(n) < 0.1
    n_skills = rng.integers(1, 4, size=n)
    skills = tuple(
        {
            CATEGORIES[c]: int(rng.integers(1, 4))
            for c in rng.choice(len(CATEGORIES), size=k, replace=False, p=_category_mix())
        }
        for k in n_skills
    )
    capacity = np.where(platform, rng.integers(10, 41, size=n), rng.integers(1, 6, size=n))
    conflicted = rng.random(n) < 0.02
    return ProviderTable(
        id=np.array([f"p{i:06d}" for i in range(n)], dtype=object),
        kind=np.where(platform, "platform", "expert").astype(object),
        skills=skills,
        expertise=np.array([" ".join(_text(rng, c, 3) for c in s) for s in skills], dtype=object),
        industries=tuple(
            tuple(rng.choice(np.array(_DIVISIONS), size=int(rng.integers(0, 3))).tolist())
            for _ in range(n)
        ),
        regions=_served_regions(rng, n, counties),
        remote=rng.random(n) < 0.3,
        capacity=capacity.astype(np.int64),
        load=(rng.random(n) * capacity * 0.5).astype(np.int64),
        paused=rng.random(n) < 0.05,
        active=rng.random(n) > 0.03,
        rating=np.where(rng.random(n) < 0.3, np.nan, rng.uniform(2.5, 5.0, size=n)),
        conflicts=tuple(
            frozenset(f"e{j:06d}" for j in rng.integers(0, max(n_ent, 1), size=3))
            if c
            else frozenset()
            for c in conflicted
        ),
    )


def make_problem(n_requests: int, n_providers: int, seed: int = 0) -> Problem:
    """A seeded synthetic problem with ``n_requests`` requests and ``n_providers`` providers."""
    rng = np.random.default_rng(seed)
    counties = _counties(rng)
    requests = _requests(rng, n_requests, counties)
    providers = _providers(rng, n_providers, counties, max(n_requests // 2, 1))
    ex_rows: NDArray[np.int64] | list[int] = (
        rng.choice(n_requests, size=n_requests // 200, replace=False) if n_requests else []
    )
    exclusions = (
        tuple(
            Exclusion(
                provider=f"p{int(rng.integers(n_providers)):06d}", request=str(requests.id[i])
            )
            for i in ex_rows
        )
        if n_providers
        else ()
    )
    return Problem(requests, providers, exclusions)
