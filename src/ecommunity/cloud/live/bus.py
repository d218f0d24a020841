"""The live bus seam: ``make_bus(None)`` is in-process, ``redis://`` spans instances.

A bus carries text messages on named channels. Each process keeps one local fan-out table
(channel → subscriptions); the Redis bus adds one pub/sub connection per process, subscribed to
each channel that has at least one local subscriber, so a thousand browser sockets on one
instance cost one Redis subscription per watched meter, not a thousand.

Delivery is at most once: the bus is for live data and control hints; anything that must not be
lost (stored readings) is in the database before it is published.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Protocol

logger = logging.getLogger(__name__)

#: Messages a slow subscriber may fall behind by before the oldest are dropped.
SUBSCRIPTION_QUEUE_SIZE = 1000
#: How long the Redis bus waits for Redis to confirm a (un)subscribe. [s]
CONFIRM_TIMEOUT_S = 5.0


class BusError(Exception):
    """The bus cannot carry a message or a subscription (e.g. Redis is unreachable)."""


class Subscription:
    """Messages of one channel for one subscriber, in order; closing it unsubscribes."""

    def __init__(self, bus: _FanoutBus, channel: str) -> None:
        self.channel = channel
        self._bus = bus
        self._queue: asyncio.Queue[str] = asyncio.Queue(SUBSCRIPTION_QUEUE_SIZE)
        self._closed = False
        #: Messages dropped because this subscriber fell behind.
        self.dropped = 0

    def _deliver(self, data: str) -> None:
        if self._queue.full():
            # A live view wants the newest data: drop the oldest rather than block the bus.
            self._queue.get_nowait()
            self.dropped += 1
            if self.dropped == 1:
                logger.warning("subscriber of %s falls behind: dropping old messages", self.channel)
        self._queue.put_nowait(data)

    async def get(self) -> str:
        """The next message (waits for one)."""
        return await self._queue.get()

    def get_nowait(self) -> str | None:
        """The next message if one is waiting, else None."""
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self._bus._unsubscribe(self)

    def __aiter__(self) -> AsyncIterator[str]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[str]:
        while True:
            yield await self.get()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()


class LiveBus(Protocol):
    """Publish/subscribe of text messages on named channels."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def publish(self, channel: str, data: str) -> None:
        """Send ``data`` to every subscriber of ``channel`` (in any instance, for Redis).

        :raises BusError: the bus is unreachable.
        """
        ...

    async def subscribe(self, channel: str) -> Subscription:
        """Subscribe; when this returns, messages published from now on are received.

        :raises BusError: the bus is unreachable.
        """
        ...

    async def subscriber_count(self, channel: str) -> int:
        """How many subscribe to ``channel``; 0 means nobody, anywhere.

        In-process: local subscriptions. Redis: subscribed processes (PUBSUB NUMSUB), which
        drops to 0 by itself when an instance dies, so no count can be left behind.
        """
        ...


class _FanoutBus:
    """The local fan-out table both buses share."""

    def __init__(self) -> None:
        self._local: dict[str, set[Subscription]] = {}

    def _fan_out(self, channel: str, data: str) -> None:
        for subscription in tuple(self._local.get(channel, ())):
            subscription._deliver(data)

    def _add(self, subscription: Subscription) -> bool:
        """Register locally; True if it is the channel's first local subscriber."""
        subscribers = self._local.setdefault(subscription.channel, set())
        subscribers.add(subscription)
        return len(subscribers) == 1

    def _remove(self, subscription: Subscription) -> bool:
        """Unregister locally; True if the channel has no local subscriber left."""
        subscribers = self._local.get(subscription.channel)
        if subscribers is None:
            return False
        subscribers.discard(subscription)
        if subscribers:
            return False
        del self._local[subscription.channel]
        return True

    async def _unsubscribe(self, subscription: Subscription) -> None:
        self._remove(subscription)


class InProcessBus(_FanoutBus):
    """Publish/subscribe inside one process (the embedded default)."""

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self._local.clear()

    async def publish(self, channel: str, data: str) -> None:
        self._fan_out(channel, data)

    async def subscribe(self, channel: str) -> Subscription:
        subscription = Subscription(self, channel)
        self._add(subscription)
        return subscription

    async def subscriber_count(self, channel: str) -> int:
        return len(self._local.get(channel, ()))


class RedisBus(_FanoutBus):
    """Publish/subscribe through Redis, so that several cloud instances behave as one.

    Redis pub/sub channels are global to the server, not per database: the channel names carry
    the database number of the URL, so that ``redis://…/3`` and ``redis://…/4`` do not mix.
    """

    def __init__(self, url: str) -> None:
        super().__init__()
        import redis.asyncio as redis

        self._redis = redis.Redis.from_url(url, decode_responses=True)
        self._prefix = f"ecommunity:{self._redis.connection_pool.connection_kwargs.get('db', 0)}:"
        self._pubsub = self._redis.pubsub()
        self._reader: asyncio.Task[None] | None = None
        # Subscribes and unsubscribes go one at a time, each waiting for Redis to confirm, so
        # that a subscriber is counted by PUBSUB NUMSUB everywhere once subscribe() returns.
        self._commands = asyncio.Lock()
        self._pending: tuple[str, str, asyncio.Future[None]] | None = None

    async def start(self) -> None:
        from redis.exceptions import RedisError

        try:
            await self._redis.ping()
            await self._pubsub.connect()  # type: ignore[no-untyped-call]
        except (RedisError, OSError) as exc:
            raise BusError(f"live bus: Redis unreachable: {exc}") from exc
        self._reader = asyncio.create_task(self._read(), name="live-bus-reader")

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        self._local.clear()
        await self._pubsub.aclose()  # type: ignore[no-untyped-call]
        await self._redis.aclose()

    async def publish(self, channel: str, data: str) -> None:
        from redis.exceptions import RedisError

        try:
            await self._redis.publish(self._prefix + channel, data)
        except RedisError as exc:
            raise BusError(f"live bus: cannot publish on {channel}: {exc}") from exc

    async def subscribe(self, channel: str) -> Subscription:
        subscription = Subscription(self, channel)
        async with self._commands:
            if self._add(subscription):
                try:
                    await self._command("subscribe", channel)
                except BusError:
                    self._remove(subscription)
                    raise
        return subscription

    async def _unsubscribe(self, subscription: Subscription) -> None:
        async with self._commands:
            if self._remove(subscription):
                try:
                    await self._command("unsubscribe", channel=subscription.channel)
                except BusError as exc:
                    # The reader drops messages of channels without local subscribers anyway.
                    logger.warning("%s", exc)

    async def subscriber_count(self, channel: str) -> int:
        from redis.exceptions import RedisError

        try:
            counts = await self._redis.pubsub_numsub(self._prefix + channel)
        except RedisError as exc:
            raise BusError(f"live bus: cannot count subscribers of {channel}: {exc}") from exc
        return int(counts[0][1]) if counts else 0

    async def _command(self, kind: str, channel: str) -> None:
        from redis.exceptions import RedisError

        confirmed = asyncio.get_running_loop().create_future()
        self._pending = (kind, self._prefix + channel, confirmed)
        try:
            if kind == "subscribe":
                await self._pubsub.subscribe(self._prefix + channel)
            else:
                await self._pubsub.unsubscribe(self._prefix + channel)
            await asyncio.wait_for(confirmed, CONFIRM_TIMEOUT_S)
        except (RedisError, OSError, TimeoutError) as exc:
            raise BusError(f"live bus: cannot {kind} {channel}: {exc!r}") from exc
        finally:
            self._pending = None

    async def _read(self) -> None:
        from redis.exceptions import RedisError

        failures = 0
        while True:
            try:
                message = await self._pubsub.get_message(timeout=None)
            except (RedisError, OSError) as exc:
                # redis-py reconnects and resubscribes on the next read; back off meanwhile.
                failures += 1
                level = logging.WARNING if failures == 1 else logging.DEBUG
                logger.log(level, "live bus: Redis read failed (%d in a row): %s", failures, exc)
                await asyncio.sleep(min(0.1 * 2**failures, 5.0))
                continue
            failures = 0
            if message is None:
                continue
            kind, channel = message["type"], message["channel"]
            if kind == "message":
                self._fan_out(channel.removeprefix(self._prefix), message["data"])
            elif (
                self._pending is not None
                and self._pending[:2] == (kind, channel)
                and not self._pending[2].done()
            ):
                self._pending[2].set_result(None)


def make_bus(url: str | None) -> LiveBus:
    """The in-process bus for no URL, the Redis bus for ``redis://`` or ``rediss://``.

    :raises ValueError: another kind of URL.
    """
    if not url:
        return InProcessBus()
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisBus(url)
    raise ValueError(f"the live bus URL must start with redis:// or rediss://, not {url!r}")
