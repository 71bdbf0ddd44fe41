"""``POST /imports/{kind}`` (multipart ``file``) and ``GET /imports/{kind}/template``."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, File, UploadFile
from fastapi.responses import Response

from app.common.schemas import problem_responses
from app.deps import DbSession, OneHopRoute, Staff
from app.errors import InvalidInput
from app.exports.negotiation import FormatDep, LangDep
from app.exports.router import FILE_RESPONSES
from app.exports.writers import MEDIA_TYPES, spool
from app.imports import service as import_service
from app.imports.columns import Kind
from app.imports.schemas import ImportReport

router = APIRouter(route_class=OneHopRoute, prefix="/imports", tags=["imports"])

MAX_BYTES = 20 * 1024 * 1024


@router.post(
    "/{kind}", response_model=ImportReport, responses=problem_responses(401, 403, 409, 422)
)
def import_file(
    kind: Kind,
    file: Annotated[UploadFile, File(description="CSV (UTF-8 or GB 18030) or XLSX")],
    session: DbSession,
    principal: Staff,
) -> ImportReport:
    """Import every row or none: a file with any bad row is refused with a problem whose
    ``errors`` list each bad row's number, column and reason. Re-importing is harmless:
    enterprises are matched on the USCC, providers on the e-mail (else kind + name +
    organisation), requests on enterprise + category + title."""
    data = file.file.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise InvalidInput(f"the file is larger than {MAX_BYTES // 2**20} MiB", field="file")
    return import_service.import_file(session, principal=principal, kind=kind, data=data)


@router.get("/{kind}/template", response_class=Response, responses=FILE_RESPONSES)
def download_template(kind: Kind, principal: Staff, fmt: FormatDep, lang: LangDep) -> Response:
    """An empty file with the columns an import takes; required ones end in ``*``."""
    header = import_service.template_header(kind, lang)
    with spool(fmt, header, [], title=kind.value) as file:
        body = file.read()
    name = f"zhuqi-{kind.value}-template.{fmt.value}"
    return Response(
        body,
        media_type=MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"},
    )
