"""Bounded waits for a condition: a test waits for what it needs to see, never for a fixed time."""

from __future__ import annotations

import asyncio
import inspect
import time
from typing import Any, Callable

POLL_S = 0.05

Description = str | Callable[[], str]  # what is awaited; a callable can tell the state it ended in


def _timed_out(timeout: float, what: Description) -> AssertionError:
    return AssertionError(f"waited {timeout} s for {what() if callable(what) else what}")


def wait_until(predicate: Callable[[], Any], timeout: float, what: Description, poll: float = POLL_S) -> Any:
    """Call `predicate` until it returns something truthy and return that; fail naming `what` after
    `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise _timed_out(timeout, what)
        time.sleep(poll)


async def wait_until_async(predicate: Callable[[], Any], timeout: float, what: Description,
                           poll: float = POLL_S) -> Any:
    """`wait_until` on the event loop; `predicate` may return an awaitable (a coroutine function)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() >= deadline:
            raise _timed_out(timeout, what)
        await asyncio.sleep(poll)
