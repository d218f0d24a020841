"""Fan-out of new readings to the local API's WebSocket clients, inside one event loop.

The reader thread stores a reading and hands it over with :meth:`LiveFeed.publish_threadsafe`;
each subscriber has a small queue of its own. A client too slow to keep up loses its oldest
readings rather than holding up the others or growing memory without bound on a Pi.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

logger = logging.getLogger(__name__)

#: Readings queued per subscriber before the oldest is dropped.
QUEUE_SIZE = 64


class LiveFeed:
    """Subscribers get every reading published after they subscribed."""

    def __init__(self) -> None:
        #: The loop the subscribers wait in (the first subscriber's).
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queues: set[asyncio.Queue[dict[str, Any]]] = set()
        #: Readings dropped for slow subscribers, in all.
        self.dropped = 0

    @property
    def subscribers(self) -> int:
        return len(self._queues)

    def publish(self, message: dict[str, Any]) -> None:
        """Queue ``message`` for every subscriber (event-loop thread only)."""
        for queue in self._queues:
            if queue.full():
                queue.get_nowait()
                self.dropped += 1
            queue.put_nowait(message)

    def publish_threadsafe(self, message: dict[str, Any]) -> None:
        """:meth:`publish` from another thread (the serial reader)."""
        loop = self._loop
        if loop is None or not self._queues:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody listens
            loop.call_soon_threadsafe(self.publish, message)

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        self._loop = asyncio.get_running_loop()
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        self._queues.add(queue)
        try:
            yield queue
        finally:
            self._queues.discard(queue)
