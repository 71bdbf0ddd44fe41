"""What a spreadsheet reader sees instead of stored keys: header and value labels, zh or en.

Category labels come from the taxonomy table (admins extend it); the closed vocabularies
below are the enums' values, which never change without a migration.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Category


class Lang(StrEnum):
    ZH = "zh"
    EN = "en"


ZH_WORDS: Mapping[str, str] = {
    # request status
    "submitted": "已提交",
    "triaged": "已分诊",
    "matched": "已匹配",
    "in_progress": "办理中",
    "resolved": "已解决",
    "unresolvable": "无法解决",
    # assignment status (shared words above are reused)
    "proposed": "拟匹配",
    "offered": "已交办",
    "accepted": "已接受",
    "active": "服务中",
    "completed": "已完成",
    "declined": "已婉拒",
    "expired": "已超时",
    "withdrawn": "已撤回",
    "cancelled": "已取消",
    # plan status
    "draft": "草稿",
    "follow_up": "跟踪回访",
    "closed": "已关闭",
    # origin
    "match_run": "匹配运行",
    "manual": "人工指派",
    "rematch": "重新匹配",
    # size, tier, kind, severity
    "micro": "微型",
    "small": "小型",
    "medium": "中型",
    "none": "无",
    "innovative": "创新型中小企业",
    "specialised": "专精特新",
    "little_giant": "小巨人",
    "champion": "单项冠军",
    "expert": "专家",
    "platform": "服务平台",
    "ordinary": "一般",
    "major": "重大",
    # yes / no
    "true": "是",
    "false": "否",
}


@dataclass(frozen=True)
class Labels:
    lang: Lang
    categories: Mapping[str, str] = field(default_factory=dict)

    def category(self, key: str | None) -> str:
        if key is None:
            return ""
        return self.categories.get(key, key)

    def word(self, value: str | None) -> str:
        """An enum value as a reader says it; English readers get it with spaces."""
        if value is None:
            return ""
        if self.lang is Lang.ZH:
            return ZH_WORDS.get(value, value)
        return value.replace("_", " ")

    def yes_no(self, value: bool | None) -> str:
        if value is None:
            return ""
        return self.word(str(value).lower()) if self.lang is Lang.ZH else str(value).lower()


def load(session: Session, lang: Lang) -> Labels:
    """The taxonomy is a few dozen rows: read once per export, not joined per row."""
    name = Category.name_zh if lang is Lang.ZH else Category.name_en
    rows = session.execute(select(Category.key, name)).all()
    return Labels(lang=lang, categories={str(k): str(v) for k, v in rows})
