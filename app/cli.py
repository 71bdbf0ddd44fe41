"""The ``zhuqi`` command: migrate, create the first admin, load demo data, serve."""

from __future__ import annotations

import logging
from typing import Annotated

import typer
import uvicorn
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from seed.load import DEMO_LOGINS, DEMO_PASSWORD, load_demo
from sqlalchemy.orm import Session

from app import migrate
from app.auth import service as auth_service
from app.auth.schemas import StaffCreate
from app.db import make_engine, make_session_factory
from app.errors import AppError
from app.models import Role
from app.settings import get_settings

cli = typer.Typer(help="zhuqi 助企: service matching for SMEs", no_args_is_help=True)
console = Console()


def _session() -> Session:
    settings = get_settings()
    return make_session_factory(make_engine(settings.database_url))()


@cli.command("migrate")
def migrate_command() -> None:
    """Bring the database schema to the latest revision."""
    migrate.upgrade(url=get_settings().database_url)
    console.print("[green]database migrated to head[/green]")


@cli.command("create-admin")
def create_admin(
    email: Annotated[str, typer.Option(prompt=True)],
    full_name: Annotated[str, typer.Option(prompt=True)] = "Administrator",
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)
    ] = "",
) -> None:
    """Create an administrator (the first one has to come from here)."""
    data = StaffCreate(email=email, password=password, full_name=full_name, role=Role.ADMIN)
    with _session() as session, session.begin():
        try:
            user = auth_service.create_staff(session, principal=None, data=data)
        except AppError as exc:
            console.print(f"[red]{exc.detail}[/red]")
            raise typer.Exit(1) from exc
        console.print(f"admin {user.email} created (id {user.id})")


def _seed(enterprises: int, providers: int, seed: int) -> None:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as bar, _session() as session, session.begin():
        tasks: dict[str, int] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        report = load_demo(
            session, enterprises=enterprises, providers=providers, seed=seed, progress=progress
        )
    console.print(report)


@cli.command("seed")
def seed_command(
    enterprises: Annotated[int, typer.Option(min=1, help="How many enterprises")] = 200,
    providers: Annotated[int, typer.Option(min=1, help="How many experts and platforms")] = 120,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same data")] = 20261125,
) -> None:
    """Load deterministic demo data (skipped if it is already there)."""
    migrate.upgrade(url=get_settings().database_url)
    _seed(enterprises, providers, seed)


@cli.command("serve")
def serve(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
) -> None:
    """Serve the API (migrate first)."""
    uvicorn.run("app.main:app_factory", factory=True, host=host, port=port)


@cli.command("demo")
def demo(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
) -> None:
    """Migrate, load the demo data, print the log-ins and serve: the README's first command."""
    settings = get_settings()
    migrate.upgrade(url=settings.database_url)
    _seed(200, 120, 20261125)
    console.rule("zhuqi 助企 demo")
    console.print(f"API:  http://{host}:{port}/api/v1   docs: http://{host}:{port}/docs")
    console.print(f"database: {settings.database_url}")
    console.print(f"log-ins (password [bold]{DEMO_PASSWORD}[/bold]):")
    for email, role, description in DEMO_LOGINS:
        console.print(f"  {email:28} {role:12} {description}")
    uvicorn.run("app.main:app_factory", factory=True, host=host, port=port)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    cli()
