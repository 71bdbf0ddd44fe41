"""A page's class lives as long as the process: no list request builds a model class."""

from __future__ import annotations

import gc
import weakref

from app.common.pagination import PageParams, page_sequence


def test_the_class_of_a_page_outlives_a_full_collection() -> None:
    page = page_sequence([3, 1, 2], key=int, params=PageParams(limit=2, after_id=None))
    assert page.items == [1, 2]
    assert page.total == 3
    assert page.next_cursor is not None
    made_from = weakref.ref(type(page))
    del page
    gc.collect()
    # A class freed here would be built again (pydantic's generic cache is weak) by the next
    # page, about a millisecond of CPU on a list request.
    assert made_from() is not None
