"""The columns an import file may carry, and how a cell becomes an API field value.

Each column is known by its API field name, its Chinese header and its English header (the
export headers, so an export can be edited and imported back). Cells are turned into what the
API's JSON would carry — the API's pydantic schema then validates them with the API's rules.
Category and enum cells accept the key or the label a reader sees (融资 / Financing).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from app.exports.labels import ZH_WORDS

Parse = Callable[[str, "Vocabulary"], object]
_LIST_SPLIT = re.compile(r"[,,;;、\s]+")
_ENTRY_SPLIT = re.compile(r"[;;\n]+")
_LEVEL = re.compile(r"^(?P<name>.+?)[\s::=]+(?P<level>\d+)$")
_TRUE = {"true", "yes", "y", "1", "是", "√"}
_FALSE = {"false", "no", "n", "0", "否", "×"}


class Kind(StrEnum):
    ENTERPRISES = "enterprises"
    REQUESTS = "requests"
    PROVIDERS = "providers"


@dataclass(frozen=True)
class Vocabulary:
    """Label → key for categories (both languages) and for the closed enum vocabularies."""

    categories: Mapping[str, str]
    words: Mapping[str, str]

    def category(self, text: str) -> str:
        return self.categories.get(text.strip().lower(), text.strip())

    def word(self, text: str) -> str:
        folded = text.strip().lower()
        return self.words.get(folded, folded.replace(" ", "_"))


def vocabulary(categories: Sequence[tuple[str, str, str]]) -> Vocabulary:
    """From (key, name_zh, name_en) rows of the taxonomy."""
    by_label: dict[str, str] = {}
    for key, zh, en in categories:
        by_label |= {key.lower(): key, zh.lower(): key, en.lower(): key}
    words = {zh.lower(): key for key, zh in ZH_WORDS.items() if key not in ("true", "false")}
    return Vocabulary(categories=by_label, words=words)


def text(cell: str, vocab: Vocabulary) -> object:
    return cell


def word(cell: str, vocab: Vocabulary) -> object:
    return vocab.word(cell)


def category(cell: str, vocab: Vocabulary) -> object:
    return vocab.category(cell)


def codes(cell: str, vocab: Vocabulary) -> object:
    return [part for part in _LIST_SPLIT.split(cell.strip()) if part]


def flag(cell: str, vocab: Vocabulary) -> object:
    folded = cell.strip().lower()
    if folded in _TRUE:
        return True
    if folded in _FALSE:
        return False
    return cell  # pydantic names the problem


def skills(cell: str, vocab: Vocabulary) -> object:
    """``融资 3; 数字化转型 2`` (the export's form) or ``financing:3`` → ``{"financing": 3}``."""
    found: dict[str, object] = {}
    for entry in _ENTRY_SPLIT.split(cell):
        entry = entry.strip()
        if not entry:
            continue
        match = _LEVEL.match(entry)
        if match is None:
            found[vocab.category(entry)] = entry  # no level: pydantic names the problem
        else:
            found[vocab.category(match["name"])] = int(match["level"])
    return found


@dataclass(frozen=True)
class ImportColumn:
    field: str
    zh: str
    en: str
    parse: Parse = text
    required: bool = False


ENTERPRISES: tuple[ImportColumn, ...] = (
    ImportColumn("uscc", "统一社会信用代码", "USCC", required=True),
    ImportColumn("name", "企业名称", "Enterprise", required=True),
    ImportColumn("region_code", "行政区划代码", "Region code", required=True),
    ImportColumn("industry_code", "行业代码", "Industry code", required=True),
    ImportColumn("size", "企业规模", "Size", word, required=True),
    ImportColumn("tier", "培育层级", "Tier", word),
    ImportColumn("headcount", "从业人数", "Headcount"),
    ImportColumn("description", "企业简介", "Description"),
    ImportColumn("contact_name", "联系人", "Contact name"),
    ImportColumn("contact_phone", "联系电话", "Contact phone"),
    ImportColumn("contact_email", "联系邮箱", "Contact e-mail"),
)

REQUESTS: tuple[ImportColumn, ...] = (
    ImportColumn("uscc", "统一社会信用代码", "USCC", required=True),
    ImportColumn("category", "类别", "Category", category, required=True),
    ImportColumn("title", "标题", "Title", required=True),
    ImportColumn("description", "描述", "Description"),
    ImportColumn("urgency", "紧急程度", "Urgency", required=True),
    ImportColumn("severity", "严重程度", "Severity", word),
    ImportColumn("wanted_by_date", "期望解决日期", "Wanted by"),
    ImportColumn("providers_wanted", "所需服务方数", "Providers wanted"),
)

PROVIDERS: tuple[ImportColumn, ...] = (
    ImportColumn("kind", "类型", "Kind", word, required=True),
    ImportColumn("name", "名称", "Name", required=True),
    ImportColumn("organisation", "所属单位", "Organisation"),
    ImportColumn("expertise", "专长", "Expertise"),
    ImportColumn("skills", "服务类别", "Skills", skills, required=True),
    ImportColumn("industries", "服务行业", "Industries served", codes),
    ImportColumn("regions", "服务地区", "Regions served", codes),
    ImportColumn("home_region_code", "所在地区", "Home region"),
    ImportColumn("remote_ok", "可远程", "Remote OK", flag),
    ImportColumn("capacity", "容量", "Capacity"),
    ImportColumn("contact_email", "联系邮箱", "Contact e-mail"),
    ImportColumn("contact_phone", "联系电话", "Contact phone"),
    ImportColumn("paused_from_date", "暂停开始", "Paused from"),
    ImportColumn("paused_until_date", "暂停结束", "Paused until"),
)

COLUMNS: Mapping[Kind, tuple[ImportColumn, ...]] = {
    Kind.ENTERPRISES: ENTERPRISES,
    Kind.REQUESTS: REQUESTS,
    Kind.PROVIDERS: PROVIDERS,
}


def by_header(kind: Kind) -> dict[str, ImportColumn]:
    """Every spelling a header may have: field name, Chinese or English, any case."""
    found: dict[str, ImportColumn] = {}
    for column in COLUMNS[kind]:
        for name in (column.field, column.zh, column.en):
            found[name.strip().lower()] = column
    return found
