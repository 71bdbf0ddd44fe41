"""Which file format and which language an export is written in.

The query parameters win (a link in the console can force them); otherwise ``Accept`` and
``Accept-Language`` decide, as any HTTP client would expect. Chinese is the default.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Query

from app.errors import AppError
from app.exports.labels import Lang
from app.exports.writers import MEDIA_TYPES, Format


class NotAcceptable(AppError):
    status = 406
    type = "/problems/not-acceptable"
    title = "Not acceptable"


def _preferences(header: str) -> list[tuple[str, float]]:
    """``"en-GB,en;q=0.8,zh;q=0.5"`` → ``[("en-gb", 1.0), ("en", 0.8), ("zh", 0.5)]``,
    best first; entries with q=0 are refusals and dropped."""
    found: list[tuple[str, float]] = []
    for part in header.split(","):
        name, _, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if name and q > 0:
            found.append((name.strip().lower(), q))
    return sorted(found, key=lambda item: -item[1])


def export_format(
    format: Annotated[Format | None, Query(description="csv or xlsx; else from Accept")] = None,
    accept: Annotated[str | None, Header()] = None,
) -> Format:
    if format is not None:
        return format
    if not accept:
        return Format.CSV
    for media, _ in _preferences(accept):
        media = media.partition(";")[0]
        if media == MEDIA_TYPES[Format.XLSX]:
            return Format.XLSX
        if media in ("text/csv", "text/*", "*/*"):
            return Format.CSV
    raise NotAcceptable(
        "exports are text/csv or the XLSX media type; pass format=csv or format=xlsx",
        field="format",
    )


def export_lang(
    lang: Annotated[
        Lang | None, Query(description="zh (default) or en; else Accept-Language")
    ] = None,
    accept_language: Annotated[str | None, Header()] = None,
) -> Lang:
    if lang is not None:
        return lang
    for tag, _ in _preferences(accept_language or ""):
        primary = tag.partition("-")[0]
        if primary in ("zh", "en"):
            return Lang(primary)
    return Lang.ZH


FormatDep = Annotated[Format, Depends(export_format)]
LangDep = Annotated[Lang, Depends(export_lang)]
