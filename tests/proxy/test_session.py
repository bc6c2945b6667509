"""proxy/session.py without sockets: the hold queue a session keeps client bytes in."""

from __future__ import annotations

import pytest

from proxy.session import Held, HoldQueue


def test_nothing_is_held_until_a_hold_begins() -> None:
    queue = HoldQueue()
    assert not queue.holding
    with pytest.raises(RuntimeError):
        queue.keep(b"Q...", framed=False)


def test_bytes_kept_during_a_hold_come_back_in_arrival_order_with_their_kind() -> None:
    queue = HoldQueue()
    queue.hold()
    queue.keep(b"framed", framed=True)
    queue.keep(b"raw", framed=False)
    assert queue.holding
    assert queue.release() == [Held(b"framed", True), Held(b"raw", False)]
    assert not queue.holding


def test_bytes_wait_for_the_last_of_overlapping_holds() -> None:
    queue = HoldQueue()
    queue.hold()  # e.g. opening the upstream connection
    queue.hold()  # e.g. registering the engine endpoint
    queue.keep(b"a", framed=False)
    assert queue.release() == []
    assert queue.holding
    assert queue.release() == [Held(b"a", False)]


def test_a_release_leaves_the_queue_empty_for_the_next_hold() -> None:
    queue = HoldQueue()
    queue.hold()
    queue.keep(b"a", framed=False)
    queue.release()
    queue.hold()
    assert queue.release() == []


def test_requeued_items_come_after_what_the_new_hold_kept() -> None:
    queue = HoldQueue()
    queue.hold()
    queue.keep(b"first", framed=False)
    queue.keep(b"second", framed=False)
    _first, second = queue.release()
    # Relaying ``first`` started new work, which kept the rest of its own chunk.
    queue.hold()
    queue.keep(b"rest of first", framed=True)
    queue.requeue([second])
    assert queue.release() == [Held(b"rest of first", True), second]


def test_release_without_hold_is_a_bug() -> None:
    with pytest.raises(RuntimeError):
        HoldQueue().release()
