"""Analyze the providers' texts at process start, and fit the text models of the categories
with the most open offers, so the first re-match costs what the next does.

A re-match fits its text model on the expertise of the providers skilled in its requests'
categories, and the engine remembers each text's analysis per process
(:func:`matching.scoring.text.warm_token_memo`). A new API or worker process starts with
that memo empty: its first decline analyzed a thousand texts or more, loaded the segmenter's
dictionary and compiled the glossary, several times the cost of the next decline. Here a
background thread does that work once the process is up, off the request path: start-up and
readiness do not wait for it, and a re-match arriving meanwhile simply analyzes what it
still misses, as before.

The thread reads the texts in one short read transaction, then analyzes them in chunks,
each with the collector paused (:mod:`app.common.collector`: a burst of small tuples, the
same rule as a re-match's own snapshot) and resumed in between, so a long warm-up never
keeps the collector off for the whole process. Bounded by ``limit`` texts; stops between
chunks when asked to.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy.orm import Session

from app.assignments import rematch as rematch_service
from app.assignments.encode import text_memo_inputs
from app.common.collector import paused
from matching.scoring.text import warm_token_memo

logger = logging.getLogger(__name__)

#: Texts analyzed per collector pause: ~65 ms of analysis, about what a re-match pauses for.
CHUNK = 1000


def warm_text_memo(
    sessions: Callable[[], Session], *, limit: int, stop: threading.Event | None = None
) -> int:
    """Analyze up to ``limit`` vetted providers' texts into the engine's memo, with the
    glossary a re-match would use; returns how many were analyzed (not already there)."""
    started = time.perf_counter()
    with sessions() as session:
        texts, glossary = text_memo_inputs(session, limit)
    analyzed = 0
    for start in range(0, len(texts), CHUNK):
        if stop is not None and stop.is_set():
            break
        with paused():
            analyzed += warm_token_memo(texts[start : start + CHUNK], glossary)
    fitted = 0
    if stop is None or not stop.is_set():
        with sessions() as session:
            fitted = rematch_service.warm_text_models(session, stop=stop)
    # What the warm-up keeps (memo, models: ~10^5 objects at 10k providers) was allocated
    # with the collector paused; the first full pass after it walks them all (~0.1 s of CPU
    # at 10k). Taken here, in the background, it no longer lands on the first re-match.
    gc.collect()
    logger.info(
        "text memo warmed: %d of %d provider texts analyzed, %d text models fitted in %.2f s",
        analyzed,
        len(texts),
        fitted,
        time.perf_counter() - started,
    )
    return analyzed


class TextMemoWarmup:
    """The warm-up's background thread (daemon: it never holds a process's exit)."""

    def __init__(self, sessions: Callable[[], Session], *, limit: int) -> None:
        self.stopping = threading.Event()
        self.thread = threading.Thread(
            target=self._run, args=(sessions, limit), name="text-memo-warmup", daemon=True
        )

    def start(self) -> TextMemoWarmup:
        self.thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop after the chunk in progress (a shutdown must not wait for the rest)."""
        self.stopping.set()
        self.thread.join(timeout)

    def _run(self, sessions: Callable[[], Session], limit: int) -> None:
        try:
            warm_text_memo(sessions, limit=limit, stop=self.stopping)
        except Exception:  # an optimisation only: a failure leaves re-matches as they were
            logger.exception("text memo warm-up failed; re-matches analyze texts as they go")


def start_text_memo_warmup(sessions: Callable[[], Session], *, limit: int) -> TextMemoWarmup | None:
    """Start warming in the background, unless ``limit`` is 0 (switched off)."""
    if limit <= 0:
        return None
    return TextMemoWarmup(sessions, limit=limit).start()
