"""The parent's side of ``bench._swarm_worker``: a few processes holding many verifiers.

``Swarm.launch`` starts the processes (imports done, no verifier yet); ``cold_start`` tells
them all to start their verifiers at once and collects how long each took; ``applied``
then fills, per revoked session id, the moment each process's last verifier applied it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench._processes import Children, Worker, start_workers, stop_workers

REPLY_TIMEOUT_S = 300.0


@dataclass
class Swarm:
    children: Children
    workers: list[Worker]
    per_worker: int
    applied: dict[str, list[float]] = field(default_factory=dict)
    _replies: list[asyncio.Queue[tuple[str, str]]] = field(default_factory=list)
    _readers: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def verifiers(self) -> int:
        return self.per_worker * len(self.workers)

    @classmethod
    async def launch(
        cls,
        children: Children,
        env: dict[str, str],
        processes: int,
        per_worker: int,
        ready_timeout_s: float = 120.0,
    ) -> Swarm:
        workers: list[Worker] = []
        try:
            await start_workers(
                children,
                env,
                processes,
                workers,
                module="bench._swarm_worker",
                args=[str(per_worker), str(ready_timeout_s)],
                name="swarm",
            )
        except BaseException:
            await stop_workers(children, workers)
            raise
        swarm = cls(children, workers, per_worker)
        for worker in workers:
            queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
            swarm._replies.append(queue)
            swarm._readers.append(asyncio.create_task(swarm._read(worker, queue)))
        return swarm

    async def _read(self, worker: Worker, queue: asyncio.Queue[tuple[str, str]]) -> None:
        while True:
            line = await worker.reader.readline()
            if not line:
                await queue.put(("eof", ""))
                return
            kind, _, rest = line.decode().strip().partition(" ")
            if kind == "applied":
                sid, at = rest.split()
                self.applied.setdefault(sid, []).append(float(at))
            else:
                await queue.put((kind, rest))

    async def _ask(self, command: str, expect: str, timeout_s: float) -> list[Any]:
        for worker in self.workers:
            worker.send(command)
        answers = []
        for worker, queue in zip(self.workers, self._replies, strict=True):
            try:
                kind, rest = await asyncio.wait_for(queue.get(), timeout_s)
            except TimeoutError:
                raise RuntimeError(f"{worker.child.name}: no {expect} in {timeout_s}s") from None
            if kind != expect:
                raise RuntimeError(
                    f"{worker.child.name} said {kind} {rest[:200]}:\n{worker.child.tail()}"
                )
            answers.append(json.loads(rest))
        return answers

    async def cold_start(self) -> dict[str, Any]:
        """Every process starts its verifiers at once; seconds from the command per verifier."""
        began = time.monotonic()
        answers = await self._ask("start", "started", REPLY_TIMEOUT_S)
        started = [s for a in answers for s in a["started_s"]]
        ready = [s for a in answers for s in a["ready_s"]]
        return {
            "wall_s": round(time.monotonic() - began, 3),
            "started_s": started,
            "ready_s": ready,
        }

    async def status(self) -> dict[str, Any]:
        """The processes' status lines, added up."""
        answers = await self._ask("status", "status", 30.0)
        return {
            "verifiers": sum(a["verifiers"] for a in answers),
            "ready": sum(a["ready"] for a in answers),
            "max_staleness_s": max(a["max_staleness_s"] for a in answers),
            "read_errors": sum(a["read_errors"] for a in answers),
            "snapshots": sum(a["snapshots"] for a in answers),
            "events_applied": sum(a["events_applied"] for a in answers),
            "errors": sorted({e for a in answers for e in a["errors"]})[:3],
        }

    async def wait_applied(self, sids: Sequence[str], timeout_s: float) -> int:
        """Wait until every process reported every sid; how many are still missing."""
        deadline = time.monotonic() + timeout_s
        while True:
            missing = sum(len(self.applied.get(s, ())) < len(self.workers) for s in sids)
            if not missing or time.monotonic() > deadline:
                return missing
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        await stop_workers(self.children, self.workers)
        for task in self._readers:
            task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(*self._readers, return_exceptions=True)
