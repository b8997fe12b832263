"""One generation at a time on the model, behind a bounded queue: past the bound a request is refused at once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class ServerBusy(Exception):
    """Every place in the model's queue is taken: answer 503 with Retry-After."""


class ModelGate:
    """Serialises use of the model; at most `queue` callers wait, others get ServerBusy without waiting."""

    def __init__(self, queue: int = 8) -> None:
        self.queue = queue
        self._model = threading.Lock()
        self._count = threading.Lock()
        self._waiting = 0

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Wait for the model (or raise ServerBusy when the queue is full) and hold it for the block."""
        with self._count:
            if self._waiting >= self.queue:
                raise ServerBusy(f"the model is busy: {self._waiting} requests are waiting; retry shortly")
            self._waiting += 1
        try:
            self._model.acquire()
        finally:
            with self._count:
                self._waiting -= 1
        try:
            yield
        finally:
            self._model.release()

    @property
    def waiting(self) -> int:
        return self._waiting
