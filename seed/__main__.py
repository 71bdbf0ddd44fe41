"""``python -m seed``: migrate the configured database and load the demo data in one transaction.

The same loader backs ``zhuqi seed``; this entry point also takes ``--database-url`` so a load
can be timed against a scratch database without touching the environment.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

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
from sqlalchemy import make_url

from app.common.bulk import refresh_planner_statistics
from app.db import make_engine, make_session_factory
from app.migrate import upgrade
from app.settings import get_settings
from seed.load import DEMO_LOGINS, DEMO_PASSWORD, SeedReport, load_demo


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m seed", description=__doc__)
    parser.add_argument("--enterprises", type=int, default=200, help="enterprises to create")
    parser.add_argument("--providers", type=int, default=120, help="experts and platforms")
    parser.add_argument(
        "--requests-per-enterprise",
        type=float,
        default=1.5,
        help="mean number of help requests per enterprise",
    )
    parser.add_argument("--seed", type=int, default=20261125, help="same seed, same data")
    parser.add_argument(
        "--database-url",
        default=None,
        help="defaults to the service's DATABASE_URL / ZHUQI_DATABASE_URL",
    )
    args = parser.parse_args(argv)
    if args.enterprises < 1 or args.providers < 0 or args.requests_per_enterprise < 0:
        parser.error(
            "--enterprises must be at least 1; --providers and "
            "--requests-per-enterprise must not be negative"
        )
    return args


@contextmanager
def _progress_bar(console: Console) -> Iterator[Progress]:
    columns = (
        TextColumn("{task.description:<14}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as bar:
        yield bar


def _load(url: str, args: argparse.Namespace, console: Console) -> tuple[SeedReport, float]:
    """Load inside one transaction; returns the report and the seconds the commit took."""
    engine = make_engine(url)
    try:
        with _progress_bar(console) as bar, make_session_factory(engine)() as session:
            tasks: dict[str, TaskID] = {}

            def progress(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = bar.add_task(stage, total=total)
                bar.update(tasks[stage], completed=done, total=total)

            with session.begin():
                report = load_demo(
                    session,
                    enterprises=args.enterprises,
                    providers=args.providers,
                    requests_per_enterprise=args.requests_per_enterprise,
                    seed=args.seed,
                    progress=progress,
                )
                committing = time.perf_counter()
            committed = time.perf_counter() - committing
            if report.loaded:  # the planner must know the tables are no longer empty
                refresh_planner_statistics(engine)
            return report, committed
    finally:
        engine.dispose()


def _print(console: Console, report: SeedReport, timings: dict[str, float]) -> None:
    console.print(report.message)
    if report.loaded:
        _print_counts(console, report)
    console.print(" · ".join(f"{k} {v:.2f} s" for k, v in timings.items()))
    console.print(f"log-ins (password [bold]{DEMO_PASSWORD}[/bold]):")
    for email, role, description in DEMO_LOGINS:
        console.print(f"  {email:22} {role:12} {description}")


def _print_counts(console: Console, report: SeedReport) -> None:
    table = Table("rows", "count", title="demo data")
    for label in (
        "enterprises",
        "help_requests",
        "experts",
        "platforms",
        "conflicts",
        "policies",
        "users",
        "existing_kept",
    ):
        table.add_row(label.replace("_", " "), str(getattr(report, label)))
    console.print(table)


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    url: str = args.database_url or get_settings().database_url
    console = Console()
    console.print(f"database: {make_url(url).render_as_string(hide_password=True)}")
    started = time.perf_counter()
    upgrade(url=url)
    migrated = time.perf_counter()
    report, commit_seconds = _load(url, args, console)
    timings = {
        "migrate": migrated - started,
        "load": report.seconds,
        "commit": commit_seconds,
        "total": time.perf_counter() - started,
    }
    _print(console, report, timings)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
