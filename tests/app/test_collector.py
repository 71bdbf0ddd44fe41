"""Pausing the cyclic collector: off inside, back as it was after, counted across nesting."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from app.common.collector import paused


@pytest.fixture(autouse=True)
def collector_restored() -> Iterator[None]:
    was = gc.isenabled()
    yield
    if was:
        gc.enable()
    else:
        gc.disable()


def test_the_collector_is_off_inside_and_on_again_after() -> None:
    gc.enable()
    with paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_nested_pause_does_not_resume_it_early() -> None:
    gc.enable()
    with paused():
        with paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    with paused():
        pass
    assert not gc.isenabled()


def test_an_error_inside_still_resumes_it() -> None:
    gc.enable()
    with pytest.raises(RuntimeError), paused():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_overlapping_pauses_in_threads_resume_it_when_the_last_ends() -> None:
    gc.enable()
    inside, release = threading.Event(), threading.Event()

    def other() -> None:
        with paused():
            inside.set()
            release.wait(5)

    thread = threading.Thread(target=other)
    with paused():
        thread.start()
        assert inside.wait(5)
    assert not gc.isenabled()  # the other thread's pause still holds
    release.set()
    thread.join(5)
    assert gc.isenabled()
