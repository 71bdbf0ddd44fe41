"""Optimistic concurrency over HTTP: ETag carries the row version, If-Match must agree."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header, Response

from app.errors import PreconditionFailed, PreconditionRequired

IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        max_length=200,
        description="The ETag you read (or the `version` of a list item); required on every "
        "PATCH: 428 without it, 412 when the resource has changed since.",
    ),
]


def etag(version: int) -> str:
    return f'W/"{version}"'


def set_etag(response: Response, version: int) -> None:
    response.headers["ETag"] = etag(version)


def check_if_match(if_match: str | None, version: int, *, required: bool = True) -> None:
    """412 when the client edited a stale copy; 428 when ``required`` and it sent no version."""
    if if_match is None:
        if required:
            raise PreconditionRequired(
                "send If-Match with the ETag you read, so concurrent edits are not lost",
                field="If-Match",
            )
        return
    wanted = {tag.strip() for tag in if_match.split(",")}
    if "*" in wanted:
        return
    if not wanted & {etag(version), f'"{version}"'}:
        raise PreconditionFailed(
            f"the resource is at version {version}; reload it and apply your change again",
            field="If-Match",
            current_version=version,
        )
