"""What the threads of a call hand each other through a `queue.Queue`."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")


def drain(q: queue.Queue[T] | queue.SimpleQueue[T]) -> Iterator[T]:
    """The items a queue holds now, oldest first, without waiting for more (items put while the loop runs
    are taken too)."""
    while True:
        try:
            yield q.get_nowait()
        except queue.Empty:
            return
