"""The polling loop that executes queued match runs, embedded or as ``zhuqi worker``.

One loop serves both deployments. On the default SQLite set-up a daemon thread inside the
service runs it (the file has a single writer anyway); on PostgreSQL any number of
``zhuqi worker`` processes on any machines run it side by side, since claims use ``SKIP
LOCKED`` and leases (see :mod:`app.match_runs.claims`). A worker handles one run at a time:
matching is CPU-bound, so more runs in parallel means more workers, not more threads.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import date, timedelta
from types import FrameType

from sqlalchemy.orm import Session

from app.assignments import rematch_queue
from app.bundling import preparation
from app.common.clock import today
from app.common.workdays import calendar_outlook, calendar_source
from app.match_runs.claims import DEFAULT_LEASE, Claim, Sessions, claim, release
from app.match_runs.runner import Processed, ProgressFn, run_claimed
from app.settings import Settings
from app.supervision import batches
from app.supervision import service as supervision_service
from app.supervision.senders import DEFAULT_SENDERS, Sender

logger = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 30.0
SWEEP_EVERY = timedelta(minutes=5)
# The setting's own default, for a Worker built without settings (tests, tools).
REMATCH_GATHER = timedelta(seconds=Settings.model_fields["rematch_gather_seconds"].default)


def default_worker_id(kind: str = "worker") -> str:
    """Unique per process start, readable in ``claimed_by``: ``kind@host:pid:nonce``."""
    return f"{kind}@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    """Claims and executes runs until :meth:`stop` is called (or the queue is empty, once)."""

    def __init__(
        self,
        sessions: Sessions,
        *,
        worker_id: str | None = None,
        poll_seconds: float = 1.0,
        lease: timedelta = DEFAULT_LEASE,
        progress: ProgressFn | None = None,
        sweep_every: timedelta | None = SWEEP_EVERY,
        senders: Mapping[str, Sender] = DEFAULT_SENDERS,
        webhooks: Callable[[Callable[[], Session]], object] | None = None,
        rematch_gather: timedelta = REMATCH_GATHER,
    ) -> None:
        self.sessions = sessions
        self.rematch_gather = rematch_gather
        self._last_rematch = -float("inf")  # monotonic time of the last drain that took any
        self.senders = senders
        self.webhooks = webhooks
        self.sweep_every = sweep_every
        self._last_sweep = time.monotonic()  # first sweep one period after start
        self._calendar_told: date | None = None
        self.worker_id = worker_id or default_worker_id()
        self.poll_seconds = poll_seconds
        self.lease = lease
        self.progress = progress
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._current: Claim | None = None

    def step(self) -> Processed | None:
        """Execute at most one run; ``None`` when nothing was waiting."""
        claimed = claim(self.sessions, self.worker_id, lease=self.lease)
        if claimed is None:
            return None
        self._current = claimed
        try:
            return run_claimed(self.sessions, claimed, self.progress)
        finally:
            self._current = None

    def drain(self) -> list[Processed]:
        """Execute what is claimable now, plans awaiting preparation included, then return
        (``zhuqi worker --once``)."""
        done: list[Processed] = []
        self.prepare_plans()
        self.rematch_declined(gather=False)
        while not self.stopping.is_set() and (processed := self.step()) is not None:
            done.append(processed)
            self.prepare_plans()
            self.rematch_declined(gather=False)
        return done

    def rematch_declined(self, *, gather: bool = True) -> int:
        """Requests declined (or reopened) since the last poll, re-matched in batches: one
        snapshot and text model per batch, planned in a read transaction (an idle poll is one
        indexed read, no write lock) and written in a short write transaction.

        A batch's snapshot, transactions and offers' plans cost the same for one request as
        for dozens, and each category set's part about the same for one request as for ten:
        under a steady stream of declines, draining every poll paid them for one or two
        requests each time (~20 ms of worker CPU per decline at 2 k providers). So within
        ``rematch_gather`` of a drain that took requests, the declines since *gather* (no
        read at all) and the next drain takes them together: a busy worker re-matches a
        decline at most ``rematch_gather`` plus a poll later, while the first decline after a
        quiet spell is re-matched on the next poll, as before. ``gather=False`` drains now.
        """
        started = time.monotonic()
        if gather and started - self._last_rematch < self.rematch_gather.total_seconds():
            return 0
        cpu = time.thread_time()
        taken = rematch_queue.drain(
            batches.begin_each(self.sessions.read), batches.begin_each(self.sessions.write)
        )
        if taken:
            self._last_rematch = started
            logger.info(
                "worker %s re-matched %d request(s) in %.2f s (%.2f s of CPU)",
                self.worker_id,
                taken,
                time.monotonic() - started,
                time.thread_time() - cpu,
            )
        return taken

    def prepare_plans(self) -> int:
        """Plans a large publish left to prepare, in short batches until none is left (one
        cheap indexed query when there are none): done on every poll, before the next run,
        so a user waits seconds, not a sweep period, for a published plan's milestones."""
        with self.sessions.read() as session:  # no write transaction (SQLite: the file's
            if not preparation.awaiting(session):  # one write lock) on an idle poll
                return 0
        prepared = preparation.prepare_pending(batches.begin_each(self.sessions.write))
        if prepared:
            logger.info("worker %s prepared %d plan(s)", self.worker_id, prepared)
        return prepared

    def housekeeping(self) -> supervision_service.SweepReport:
        """Deadline sweep, then the outbox drained at the senders' pace; both in bounded
        batches of short transactions, safe beside other workers (CAS moves, ``dedupe_key``
        and ``SKIP LOCKED`` make them idempotent)."""
        self._last_sweep = time.monotonic()
        self._warn_of_the_calendar()
        report = batches.sweep(
            self.sessions.write, open_read=self.sessions.read, progress=self._progress_log
        )
        batches.drain_outbox(self.sessions.write, self.senders, progress=self._progress_log)
        return report

    def _warn_of_the_calendar(self) -> None:
        """Once a day, while the holiday calendar runs out within weeks: the deadline sweep is
        the first thing that stops on the first unknown day, so its log says it first."""
        day = today()
        if self._calendar_told == day:
            return
        self._calendar_told = day
        if (warning := calendar_outlook(day, calendar_source()).warning) is not None:
            logger.warning("worker %s: %s", self.worker_id, warning)

    def deliver_webhooks(self) -> None:
        """Webhooks go out on every poll (their first retry is 30 s away, not a sweep's 5 min);
        claimed and recorded in short transactions of their own, sent with none open."""
        if self.webhooks is None:
            return
        self.webhooks(self.sessions.write)

    def _prepare_plans_logged(self) -> None:
        """A plan that fails to prepare (or a re-match that fails) must not stop runs from
        being claimed: logged, and taken again on the next poll."""
        try:
            self.prepare_plans()
        except Exception:
            logger.exception("worker %s: plan preparation failed", self.worker_id)
        try:
            self.rematch_declined()
        except Exception:
            logger.exception("worker %s: re-matching declined requests failed", self.worker_id)

    def _progress_log(self, phase: str, done: int) -> None:
        logger.info("worker %s housekeeping: %s %d", self.worker_id, phase, done)

    def _sweep_due(self) -> bool:
        if self.sweep_every is None:
            return False
        return time.monotonic() - self._last_sweep >= self.sweep_every.total_seconds()

    def _housekeeping_forever(self) -> None:
        """Sweeps and the outbox on their own schedule, in their own thread: a worker that
        starts claims runs at once (crash recovery is not delayed behind a sweep) and a long
        solve never delays reminders."""
        while not self.stopping.wait(self.poll_seconds):
            if not self._sweep_due():
                continue
            try:
                self.housekeeping()
            except Exception:
                logger.exception("worker %s: housekeeping failed", self.worker_id)
                self._last_sweep = time.monotonic()  # try again next period, not in a loop

    def run_forever(self) -> None:
        """Poll until stopped; database errors back off exponentially instead of spinning."""
        logger.info("match-run worker %s started", self.worker_id)
        if self.sweep_every is not None:
            threading.Thread(
                target=self._housekeeping_forever,
                name=f"housekeeping {self.worker_id}",
                daemon=True,
            ).start()
        failures = 0
        while not self.stopping.is_set():
            try:
                self.deliver_webhooks()
                self._prepare_plans_logged()
                processed = self.step()
                failures = 0
            except Exception:
                failures += 1
                logger.exception("match-run worker %s: polling failed", self.worker_id)
                self.stopping.wait(min(MAX_BACKOFF_SECONDS, self.poll_seconds * 2**failures))
                continue
            if processed is None:
                self.stopping.wait(self.poll_seconds)
        logger.info("match-run worker %s stopped", self.worker_id)

    def start(self) -> None:
        """Run in a daemon thread: a service shutting down never waits on a long solve."""
        self._thread = threading.Thread(
            target=self.run_forever, name=f"match-worker {self.worker_id}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop polling; wait up to ``timeout`` for the current run, then hand it back.

        A run still computing when the time is up is released to the queue (fenced), so
        another worker takes it over at once rather than after the lease; this thread's
        result, should it come, finds the fence gone and is never written.
        """
        self.stopping.set()
        if self._thread is None:
            return
        self._thread.join(timeout)
        current = self._current
        if self._thread.is_alive() and current is not None:
            release(self.sessions, current)

    def serve_until_signalled(self, grace: float) -> None:
        """``zhuqi worker``: run the loop in a thread and wait for SIGTERM/SIGINT here, so a
        signal is handled at once even while the engine is deep in a solve (a handler in the
        solving thread would wait for the solve)."""
        self.stop_on_signals()
        self.start()
        while not self.stopping.wait(0.5):
            pass
        self.stop(timeout=grace)

    def stop_on_signals(self) -> None:
        """SIGINT/SIGTERM stop the worker (see :meth:`stop`); a second signal exits at once."""

        def handle(signum: int, _frame: FrameType | None) -> None:
            if self.stopping.is_set():
                raise KeyboardInterrupt
            logger.info("signal %s: stopping, releasing any unfinished run", signum)
            self.stopping.set()

        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, handle)
