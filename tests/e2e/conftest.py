"""Fixtures of the end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.gateway.fake_meter import Pty, open_pty


@pytest.fixture
def pty_pair() -> Iterator[Pty]:
    """A pty pair: the fake meter writes to ``master``, the gateway opens ``path``."""
    pair = open_pty()
    yield pair
    pair.close()
