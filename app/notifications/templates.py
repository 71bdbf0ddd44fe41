"""Every notice in every language we speak, from one table.

A notice is rendered once, when it is written to the outbox, in the recipient's language: the
outbox row then holds exactly what is sent, whatever is edited later, and a retry sends the
same words. ``string.Template`` (``$name``) keeps the templates free of logic and safe to
edit: a missing value is a ``KeyError`` in the tests, not a half-filled mail.
"""

from __future__ import annotations

from collections.abc import Mapping
from string import Template
from typing import Final, Literal

Language = Literal["zh", "en"]
LANGUAGES: Final[tuple[Language, ...]] = ("zh", "en")

_REMIND: Final = {"zh": "提醒", "en": "Reminder"}
_ESCALATE: Final = {"zh": "督办升级", "en": "Escalation"}

TEMPLATES: Final[dict[str, dict[Language, tuple[str, str]]]] = {
    "overdue.offer": {
        "zh": (
            "[$action] 邀约超时未响应 — 诉求 $request_id",
            "服务邀约应于 $due_at 前响应,已超时 $overdue_hours 小时。请尽快接受或婉拒。",
        ),
        "en": (
            "[$action] Offer not answered in time — request $request_id",
            "The offer was due for an answer by $due_at and is $overdue_hours h overdue. "
            "Please accept or decline it.",
        ),
    },
    "overdue.first_follow_up": {
        "zh": (
            "[$action] 接单后未按期首次反馈 — 诉求 $request_id",
            "首次跟进反馈应于 $due_at 前提交,已超时 $overdue_hours 小时。",
        ),
        "en": (
            "[$action] No first follow-up in time — request $request_id",
            "The first follow-up was due by $due_at and is $overdue_hours h overdue.",
        ),
    },
    "overdue.unrouted": {
        "zh": (
            "[$action] 诉求未按期交办 — 诉求 $request_id",
            "诉求应于 $due_at 前交办,已超时 $overdue_hours 小时。",
        ),
        "en": (
            "[$action] Request not routed in time — request $request_id",
            "The request was due to be routed by $due_at and is $overdue_hours h overdue.",
        ),
    },
    "overdue.unresolved": {
        "zh": (
            "[$action] 诉求未按期办结 — 诉求 $request_id",
            "诉求应于 $due_at 前办结,已超时 $overdue_hours 小时。",
        ),
        "en": (
            "[$action] Request not resolved in time — request $request_id",
            "The request was due to be resolved by $due_at and is $overdue_hours h overdue.",
        ),
    },
    "enterprise.tier_verified": {
        "zh": ("企业梯度认定通过:$claimed_tier", "您申报的梯度 $claimed_tier 已认定。$reason"),
        "en": (
            "Tier verified: $claimed_tier",
            "The tier you claimed, $claimed_tier, is verified. $reason",
        ),
    },
    "enterprise.tier_rejected": {
        "zh": ("企业梯度认定未通过:$claimed_tier", "您申报的梯度 $claimed_tier 未获认定。$reason"),
        "en": (
            "Tier not verified: $claimed_tier",
            "The tier you claimed, $claimed_tier, was not verified. $reason",
        ),
    },
    "provider.approved": {
        "zh": ("服务方审核通过", "您的服务方资料已审核通过,可以接收服务邀约。$reason"),
        "en": (
            "Your provider profile was approved",
            "Your provider profile was approved: you can now receive offers. $reason",
        ),
    },
    "provider.rejected": {
        "zh": ("服务方审核未通过", "您的服务方资料未通过审核。$reason"),
        "en": ("Your provider profile was rejected", "Your provider profile was rejected. $reason"),
    },
}


def language_of(value: str | None) -> Language:
    """The user's language, or Chinese (the service's first language) if unknown."""
    return "en" if value == "en" else "zh"


def render(
    kind: str, language: str | None, values: Mapping[str, object], *, level: int = 1
) -> tuple[str, str]:
    """(subject, body) of ``kind`` in ``language``; ``level`` 2 words it as an escalation."""
    lang = language_of(language)
    subject, body = TEMPLATES[kind][lang]
    action = (_ESCALATE if level > 1 else _REMIND)[lang]
    context = {key: str(value) for key, value in values.items()} | {"action": action}
    return Template(subject).substitute(context), Template(body).substitute(context)
