"""The ``zhuqi`` command: migrate, create the first admin, load demo data, serve."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from functools import partial
from typing import Annotated, Any

import typer
import uvicorn
from pydantic import ValidationError
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
from sqlalchemy.orm import Session

from app import migrate
from app.assignments.warmup import start_text_memo_warmup
from app.auth import service as auth_service
from app.auth.schemas import StaffCreate
from app.common.bulk import refresh_planner_statistics
from app.db import make_engine, make_session_factory
from app.errors import AppError
from app.imports.cli import import_command
from app.match_runs import claims, runner
from app.match_runs import repository as match_run_repository
from app.match_runs import service as match_run_service
from app.match_runs.schemas import MatchRunCreate, MatchRunRead
from app.models import MatchRun, MatchRunStatus, Role
from app.observability import metrics
from app.observability.logs import configure_logging, scrub
from app.settings import get_settings
from app.supervision.senders import senders_for
from app.webhooks.delivery import deliver_due
from app.worker.loop import Worker, default_worker_id
from seed.load import DEMO_LOGINS, DEMO_PASSWORD, load_demo

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
        tasks: dict[str, TaskID] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        report = load_demo(
            session, enterprises=enterprises, providers=providers, seed=seed, progress=progress
        )
    if report.loaded:  # the planner must know the tables are no longer empty
        refresh_planner_statistics(session.get_bind())
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
    _serve(host, port)


def _serve(host: str, port: int) -> None:
    """Logging is ours (``log_config=None``) and so is the access log, with request ids."""
    uvicorn.run(
        "app.main:app_factory",
        factory=True,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
    )


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
    console.print(
        f"console: http://{host}:{port}/   (log in below; 中文 by default, English a click away)"
    )
    console.print(f"API:  http://{host}:{port}/api/v1   docs: http://{host}:{port}/docs")
    console.print(f"database: {scrub(settings.database_url)}")
    console.print(f"log-ins (password [bold]{DEMO_PASSWORD}[/bold]):")
    for email, role, description in DEMO_LOGINS:
        console.print(f"  {email:28} {role:12} {description}")
    _serve(host, port)


def _run_sessions() -> claims.Sessions:
    return claims.sessions_of(make_engine(get_settings().database_url))


def _queue_run(sessions: claims.Sessions, data: MatchRunCreate) -> int:
    with sessions.write() as session, session.begin():
        try:
            return match_run_service.create(session, principal=None, data=data).id
        except AppError as exc:
            console.print(f"[red]{exc.detail}[/red]")
            raise typer.Exit(1) from exc


def _execute_with_bar(sessions: claims.Sessions, run_id: int) -> None:
    """Execute the run here, one bar step per stage, retrying it here after a transient
    fault; if a service worker took it first, follow that worker's progress instead."""
    columns = (TextColumn("{task.description:<40}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("claim", total=len(claims.STAGES))

        def progress(stage: str, step: int, steps: int, counts: dict[str, Any]) -> None:
            shown = " ".join(f"{k}={v}" for k, v in counts.items())
            done = steps if stage == "done" else step - 1
            bar.update(task, completed=done, total=steps, description=f"{stage} {shown}")

        lease = timedelta(seconds=get_settings().lease_seconds)
        worker_id = default_worker_id("cli")
        while (
            done := runner.process_next(
                sessions, worker_id, lease=lease, run_id=run_id, progress=progress
            )
        ) is not None:
            if done.outcome != "requeued":
                return
            run = _load_run(sessions, run_id)
            console.print(f"[yellow]attempt {run.attempts} hit a transient fault: {run.error}[/]")
        while (run := _load_run(sessions, run_id)).status in match_run_repository.ACTIVE:
            bar.update(task, completed=max(0, run.progress.get("step", 1) - 1))
            bar.update(task, description=f"{run.stage} (by {run.claimed_by or 'a worker'})")
            time.sleep(1)


def _load_run(sessions: claims.Sessions, run_id: int) -> MatchRun:
    with sessions.read() as session, session.begin():
        run = session.get(MatchRun, run_id)
        assert run is not None
        return run


def _print_stats(run: MatchRunRead) -> None:
    if run.status != MatchRunStatus.SUCCEEDED or run.stats is None:
        where = (
            f" in stage {run.stats.failed_stage}" if run.stats and run.stats.failed_stage else ""
        )
        console.print(
            f"[red]match run {run.id} {run.status.value}{where} after {run.attempts} "
            f"attempt(s): {run.error}[/red]"
        )
        console.print("the scope is free again: fix the cause and run it anew")
        return
    stats = run.stats
    table = Table(title=f"match run {run.id} (scope {run.scope_region or 'all'})")
    table.add_column("statistic")
    table.add_column("value", justify="right")
    for label, value in [
        ("requests", stats.requests),
        ("providers", stats.providers),
        ("pinned", stats.pinned),
        ("candidate pairs", stats.candidate_pairs),
        ("matched (proposals)", stats.matched),
        ("unmatched", stats.unmatched),
        *((f"  unmatched: {k}", v) for k, v in sorted(stats.unmatched_by_reason.items())),
        ("objective", f"{stats.objective:.4f}"),
        ("bound", f"{stats.bound:.4f}"),
        ("gap", f"{stats.gap:.2%}"),
        *((f"  seconds: {k}", f"{v:.3f}") for k, v in stats.seconds.items()),
    ]:
        table.add_row(label, str(value))
    console.print(table)
    for shortage in stats.shortages:
        console.print(f"[yellow]shortage[/yellow] {shortage.message_en} / {shortage.message_zh}")


@cli.command("match")
def match_command(
    region: Annotated[str, typer.Option(help="Region prefix to match, e.g. 35 or 350582")],
    category: Annotated[
        list[str] | None, typer.Option(help="Only these categories (repeatable)")
    ] = None,
    request_id: Annotated[list[int] | None, typer.Option(help="Only these requests")] = None,
    weights: Annotated[str, typer.Option(help="JSON, e.g. '{\"fairness\": 0.1}'")] = "{}",
) -> None:
    """Queue a match run for a scope, execute it here with a progress bar, print its stats."""
    try:
        data = MatchRunCreate(
            scope_region=region,
            scope_categories=category or [],
            scope_request_ids=request_id or [],
            weights=json.loads(weights),
        )
    except (ValidationError, json.JSONDecodeError) as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    sessions = _run_sessions()
    run_id = _queue_run(sessions, data)
    console.print(f"match run {run_id} queued")
    queued = _load_run(sessions, run_id)
    for stuck in queued.stats.get("replaced_stuck_run_ids", []):
        console.print(f"[yellow]match run {stuck} of this scope was stuck; marked failed[/]")
    _execute_with_bar(sessions, run_id)
    run = MatchRunRead.model_validate(_load_run(sessions, run_id))
    _print_stats(run)
    if run.status != MatchRunStatus.SUCCEEDED:
        raise typer.Exit(1)


@cli.command("worker")
def worker_command(
    once: Annotated[bool, typer.Option(help="Process what is queued, then exit")] = False,
    poll: Annotated[float, typer.Option(min=0.1, help="Seconds between polls when idle")] = 1.0,
    worker_id: Annotated[str | None, typer.Option(help="Name shown in claimed_by")] = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve Prometheus metrics on ZHUQI_METRICS_BIND:PORT")
    ] = None,
) -> None:
    """Execute queued match runs (any number of workers may run, on any machines)."""
    metrics.describe_process("worker")
    if metrics_port is not None:
        metrics.start_exporter(metrics_port, get_settings().metrics_bind)
    worker = Worker(
        _run_sessions(),
        worker_id=worker_id,
        poll_seconds=poll,
        lease=timedelta(seconds=get_settings().lease_seconds),
        senders=senders_for(get_settings()),
        webhooks=partial(deliver_due, settings=get_settings()),
        rematch_gather=timedelta(seconds=get_settings().rematch_gather_seconds),
    )
    if once:  # a run fits on every provider anyway: no warm-up competing with it
        done = worker.drain()
        console.print(
            f"{len(done)} match run(s) processed: {[(p.run_id, p.outcome) for p in done]}"
        )
        return
    warmup = start_text_memo_warmup(
        worker.sessions.read, limit=get_settings().text_warmup_providers
    )
    worker.serve_until_signalled(grace=get_settings().shutdown_grace_seconds)
    if warmup is not None:
        warmup.stop()


@cli.command("supervise")
def supervise_command() -> None:
    """Run the deadline sweep and deliver the notification outbox once (workers do this every
    few minutes on their own; use this from cron when no worker runs)."""
    worker = Worker(
        _run_sessions(),
        worker_id=default_worker_id("supervise"),
        senders=senders_for(get_settings()),
    )
    report = worker.housekeeping()
    console.print(
        f"expired offers {report.expired_offers}, released {report.released_offers}, "
        f"re-matched {report.rematched_offers}, overdue {report.overdue}, "
        f"notifications {report.notifications}"
    )


cli.command("import")(import_command)


def main() -> None:
    settings = get_settings()
    configure_logging(settings.log_level, json=settings.log_json)
    cli()
