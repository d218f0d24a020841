"""A small cache of computed answers per database engine (so per app, and never shared
between the tests' apps), each kept for a time to live."""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session

V = TypeVar("V")


class EngineCache(Generic[V]):
    """Answers by key, per engine, for ``ttl_s`` seconds; at most ``size`` per engine (when
    full it starts over: the answers are cheap to make again, just not on every request)."""

    def __init__(self, ttl_s: float, size: int) -> None:
        self.ttl_s = ttl_s
        self.size = size
        self._lock = threading.Lock()
        self._by_engine: weakref.WeakKeyDictionary[Engine, dict[Hashable, tuple[float, V]]] = (
            weakref.WeakKeyDictionary()
        )

    def get(self, db: Session, key: Hashable, make: Callable[[], V]) -> V:
        """The cached answer for ``key``, or ``make()``'s, kept from now on."""
        engine = db.get_bind().engine
        with self._lock:
            entries = self._by_engine.setdefault(engine, {})
            cached = entries.get(key)
        if cached is not None and time.monotonic() - cached[0] < self.ttl_s:
            return cached[1]
        value = make()
        with self._lock:
            if len(entries) >= self.size:
                entries.clear()
            entries[key] = (time.monotonic(), value)
        return value

    def clear(self, engine: Engine) -> None:
        with self._lock:
            self._by_engine.pop(engine, None)
