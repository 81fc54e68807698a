"""Dynamic micro-batching: requests gathered for at most ``max_wait_ms`` up to ``max_batch``
and handed to ``process`` in one call, on one worker thread (off the event loop).

``process(items) -> results`` returns one result per item, in order; a result that is an
``Exception`` instance fails only its own request, an exception raised by ``process`` fails
the whole batch. :meth:`MicroBatcher.close` stops taking new items and drains the queue:
every item accepted before it is processed (graceful shutdown).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import threading
import time
from typing import Any, Callable, Sequence

log = logging.getLogger(__name__)
_STOP = object()


class Closed(RuntimeError):
  """The batcher is shutting down and takes no new items."""


class MicroBatcher:
  def __init__(self, process: Callable[[list[Any]], Sequence[Any]], *, max_batch: int = 16,
               max_wait_ms: float = 2.0, name: str = "palmjax-batcher"):
    if max_batch < 1 or max_wait_ms < 0:
      raise ValueError(f"max_batch must be >= 1 and max_wait_ms >= 0, got {max_batch}, "
                       f"{max_wait_ms}")
    self.process, self.max_batch, self.max_wait = process, max_batch, max_wait_ms / 1000.0
    self._q: queue.Queue = queue.Queue()
    self._lock = threading.Lock()
    self._closed = False
    self.batch_sizes: list[int] = []  # every batch's size, for tests and the bench
    self._thread = threading.Thread(target=self._run, name=name, daemon=True)
    self._thread.start()

  def submit(self, item: Any) -> concurrent.futures.Future:
    fut: concurrent.futures.Future = concurrent.futures.Future()
    with self._lock:
      if self._closed:
        raise Closed("the server is shutting down")
      self._q.put((item, fut))
    return fut

  async def __call__(self, item: Any) -> Any:
    """Submits ``item`` and awaits its result without blocking the event loop."""
    return await asyncio.wrap_future(self.submit(item))

  def close(self, timeout: float | None = None) -> None:
    """Takes no new items; processes the queued ones; joins the worker."""
    with self._lock:
      if self._closed:
        return
      self._closed = True
      self._q.put(_STOP)
    self._thread.join(timeout)

  def _run(self) -> None:
    stopping = False
    while not stopping:
      first = self._q.get()
      if first is _STOP:
        break
      batch = [first]
      deadline = time.monotonic() + self.max_wait
      while len(batch) < self.max_batch:
        try:
          left = deadline - time.monotonic()
          nxt = self._q.get(timeout=left) if left > 0 else self._q.get_nowait()
        except queue.Empty:
          break
        if nxt is _STOP:
          stopping = True
          break
        batch.append(nxt)
      self._run_batch(batch)

  def _run_batch(self, batch: list[tuple[Any, concurrent.futures.Future]]) -> None:
    self.batch_sizes.append(len(batch))
    try:
      results = list(self.process([item for item, _ in batch]))
      if len(results) != len(batch):
        raise RuntimeError(f"process returned {len(results)} results for {len(batch)} items")
    except Exception as e:  # noqa: BLE001 - the whole batch fails, the worker lives on
      log.exception("batch of %d failed", len(batch))
      results = [e] * len(batch)
    for (_, fut), r in zip(batch, results):
      if isinstance(r, BaseException):
        fut.set_exception(r)
      else:
        fut.set_result(r)
