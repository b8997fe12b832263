"""One generation at a time on the model, behind a bounded queue: past the bound a request is refused at once;
background work (pending captions) takes the model only while no request holds it or waits for it."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from PIL import Image

from kb.errors import KBError
from kb.models.vlm import Message, VisionLanguageModel


class ServerBusy(KBError):
    """Every place in the model's queue is taken: answer 503 with Retry-After."""


class ModelGate:
    """Serialises use of the model; at most `queue` callers wait, others get ServerBusy without waiting.

    Requests (`turn`) come first: `idle_turn` gives the model to background work only when no request holds it or
    waits for it, so a request that arrives waits at most for the background block in progress.
    """

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

    @contextmanager
    def idle_turn(self) -> Iterator[bool]:
        """Hold the model for the block if it is idle (yields True); yields False at once, holding nothing, when a
        request holds it or waits for it. Keep the block short: a request arriving meanwhile waits for it."""
        with self._count:
            taken = self._waiting == 0 and self._model.acquire(blocking=False)
        try:
            yield taken
        finally:
            if taken:
                self._model.release()

    @property
    def waiting(self) -> int:
        return self._waiting


class GatedModel:
    """A VLM whose every use (a caption batch, a streamed reply) waits for its turn at `gate`, as a request.

    Other attributes are the model's own; `model` is the VLM itself, for background work that takes `idle_turn`.
    """

    def __init__(self, model: VisionLanguageModel, gate: ModelGate) -> None:
        self.model = model
        self.gate = gate
        self.model_id = model.model_id
        self.settings_tag = model.settings_tag
        self.batch_size = model.batch_size

    def describe(self, images: Sequence[Image.Image]) -> list[str]:
        with self.gate.turn():
            return self.model.describe(images)

    def stream(self, messages: Sequence[Message], images: Sequence[Image.Image], max_new_tokens: int) -> Iterator[str]:
        with self.gate.turn():
            yield from self.model.stream(messages, images, max_new_tokens)

    def __getattr__(self, name: str):
        return getattr(self.model, name)
