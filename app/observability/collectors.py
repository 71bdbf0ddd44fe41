"""Gauges read from the database at scrape time: the state of the whole system, the same
whichever process is asked (so ``max`` them across instances, do not sum)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from pathlib import Path

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import QueuePool

from app.admission import AdmissionStats
from app.common.clock import today
from app.common.workdays import calendar_outlook
from app.models import MatchRunStatus, NotificationStatus, WebhookDeliveryStatus
from app.observability import repository
from app.observability.backlog import backlog


def _family(
    name: str, documentation: str, label: str, counts: Mapping[str, float]
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=[label])
    for value, count in sorted(counts.items()):
        family.add_metric([value], count)
    return family


class DatabaseCollector(Collector):
    """Queue depth, run statuses, outbox backlog and dead letters, open assignments, pool."""

    def __init__(self, session: Session, engine: Engine | None) -> None:
        self.session = session
        self.engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        runs = repository.runs_by_status(self.session)
        yield _family("zhuqi_match_runs", "Match runs by status", "status", runs)
        yield GaugeMetricFamily(
            "zhuqi_match_run_queue_depth",
            "Match runs waiting for a worker",
            value=runs[MatchRunStatus.QUEUED.value],
        )
        yield _family(
            "zhuqi_outbox_backlog",
            "Notifications waiting for delivery, by channel",
            "channel",
            repository.outbox_by_channel(self.session, NotificationStatus.PENDING)
            | {
                "webhook": repository.webhook_deliveries(
                    self.session, WebhookDeliveryStatus.PENDING
                )
            },
        )
        yield _family(
            "zhuqi_outbox_dead_letters",
            "Notifications given up on after every retry, by channel",
            "channel",
            repository.outbox_by_channel(self.session, NotificationStatus.FAILED)
            | {
                "webhook": repository.webhook_deliveries(self.session, WebhookDeliveryStatus.FAILED)
            },
        )
        yield _family(
            "zhuqi_assignments_open",
            "Assignments not yet finished, by status",
            "status",
            repository.open_assignments_by_status(self.session),
        )
        yield GaugeMetricFamily(
            "zhuqi_plans_awaiting_preparation",
            "Published plans whose milestones, policies and summary the worker has yet to prepare",
            value=repository.plans_awaiting_preparation(self.session),
        )
        yield GaugeMetricFamily(
            "zhuqi_requests_awaiting_rematch",
            "Requests a provider declined (or that were reopened) the worker has yet to re-match",
            value=repository.requests_awaiting_rematch(self.session),
        )
        waited = backlog(self.session, stall_seconds=math.inf).oldest_seconds
        yield _family(
            "zhuqi_background_oldest_wait_seconds",
            "How long the oldest item a worker has yet to take has waited, by queue (0: none)",
            "queue",
            waited,
        )
        yield from self._pool()

    def _pool(self) -> Iterator[GaugeMetricFamily]:
        pool = self.engine.pool if self.engine is not None else None
        if not isinstance(pool, QueuePool):
            return
        yield GaugeMetricFamily("zhuqi_db_pool_size", "Pooled connections kept", value=pool.size())
        yield GaugeMetricFamily(
            "zhuqi_db_pool_overflow", "Connections open beyond the pool size", value=pool.overflow()
        )


class AdmissionCollector(Collector):
    """This process's admission queue: how close it runs to its limit of requests at once,
    how many wait for a slot, and how many gave up with 503 (the early sign of overload,
    before the pool or the database shows any)."""

    def __init__(self, stats: AdmissionStats) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        stats = self.stats
        yield GaugeMetricFamily(
            "zhuqi_admission_limit", "Requests admitted at once, at most", value=stats.limit
        )
        yield GaugeMetricFamily(
            "zhuqi_admission_inflight", "Requests admitted now", value=stats.inflight
        )
        yield GaugeMetricFamily(
            "zhuqi_admission_waiting", "Requests waiting for a slot now", value=stats.waiting
        )
        yield GaugeMetricFamily(
            "zhuqi_admission_waiting_peak",
            "Most requests waiting at once since the process started",
            value=stats.peak_waiting,
        )
        yield CounterMetricFamily(
            "zhuqi_admission_admitted", "Requests admitted", value=stats.admitted
        )
        yield CounterMetricFamily(
            "zhuqi_admission_rejected",
            "Requests refused with 503 after waiting the admission timeout",
            value=stats.rejected,
        )


class CalendarCollector(Collector):
    """How many days the working-day clocks can still count: alert on it well before the
    year the holiday calendar does not know (see :class:`app.common.workdays.CalendarOutlook`)."""

    def __init__(self, source: Path | None) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        outlook = calendar_outlook(today(), self.source)
        yield GaugeMetricFamily(
            "zhuqi_holiday_calendar_days_left",
            "Days until the first day the holiday calendar does not know (0: today)",
            value=outlook.days_left,
        )
