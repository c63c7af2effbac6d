"""AsyncSynthesisEngine: synthesis off the event loop, in a thread pool.

Blocks are rendered strictly in order (one at a time, guarded by a lock inside the worker), so the
stream stays seamless even if several callers await at once; torch releases the GIL while it computes.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from auralis_ray.synth.engine import OptimizedSynthesisEngine


class AsyncSynthesisEngine:
    """Synthesis engine with thread pool offloading."""

    def __init__(self, engine: OptimizedSynthesisEngine, max_workers: int = 2) -> None:
        self.sync_engine = engine
        self.thread_pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="auralis-synth")
        self._lock = threading.Lock()
        self.render_count: int = 0
        self.total_render_time: float = 0.0
        self._closed = False

    def _render(self) -> dict[str, np.ndarray]:
        with self._lock:
            started = time.perf_counter()
            blocks = self.sync_engine.render_block()
            self.total_render_time += time.perf_counter() - started
            self.render_count += 1
            return blocks

    async def render_block_async(self) -> dict[str, np.ndarray]:
        if self._closed:
            raise RuntimeError("AsyncSynthesisEngine is shut down")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.thread_pool, self._render)

    @property
    def mean_render_time(self) -> float:
        return self.total_render_time / self.render_count if self.render_count else 0.0

    async def shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.get_running_loop().run_in_executor(None, self.thread_pool.shutdown, True)
