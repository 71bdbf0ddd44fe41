"""``zhuqi import <kind> <file>``: the same import as the API, from the shell, with a bar."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.common.principal import Principal
from app.db import make_engine, make_session_factory
from app.errors import AppError
from app.imports import service as import_service
from app.imports.columns import Kind
from app.imports.schemas import ImportReport
from app.models import User
from app.settings import get_settings

console = Console()
SHOWN_ERRORS = 30


def _principal(session: Session, email: str) -> Principal:
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None or not user.is_active:
        console.print(f"[red]no active user {email}[/red]")
        raise typer.Exit(1)
    return Principal.of(user)


def _print_errors(exc: AppError) -> None:
    console.print(f"[red]{exc.detail}[/red]")
    errors = exc.extra.get("errors") or []
    if not errors:
        return
    table = Table("row", "column", "problem")
    for error in errors[:SHOWN_ERRORS]:
        table.add_row(str(error["row"]), str(error["column"]), str(error["message"]))
    console.print(table)
    if len(errors) > SHOWN_ERRORS:
        console.print(f"… and {exc.extra.get('error_count', len(errors)) - SHOWN_ERRORS} more")


def _run(session: Session, kind: Kind, data: bytes, email: str) -> ImportReport:
    columns = (TextColumn("{task.description:<8}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=console) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        principal = _principal(session, email)
        return import_service.import_file(
            session, principal=principal, kind=kind, data=data, progress=progress
        )


def import_command(
    kind: Annotated[Kind, typer.Argument(help="enterprises, requests or providers")],
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV or XLSX")],
    user: Annotated[str, typer.Option("--as", help="E-mail of the coordinator or admin importing")],
) -> None:
    """Import a CSV or XLSX file: every row or none, as the given coordinator or admin."""
    data = file.read_bytes()
    factory = make_session_factory(make_engine(get_settings().database_url))
    try:
        with factory() as session, session.begin():
            report = _run(session, kind, data, user)
    except AppError as exc:
        _print_errors(exc)
        raise typer.Exit(1) from exc
    console.print(
        f"[green]{report.kind.value}: {report.rows} rows, {report.created} created, "
        f"{report.updated} updated, {report.unchanged} unchanged in {report.seconds:.2f} s[/green]"
    )
    if report.ignored_columns:
        console.print(f"columns not imported: {', '.join(report.ignored_columns)}")
