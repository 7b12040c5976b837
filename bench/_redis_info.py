"""What a Redis server says about its own load, read with ``INFO`` before and after a phase.

The server's own accounting (``used_cpu_*`` from getrusage, ``commandstats``, network byte
counters) is what a capacity model needs: it excludes the clients sharing this host.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import redis

from revocast.connection import redis_client


@dataclass(frozen=True)
class Sample:
    """One ``INFO all`` reading of one server."""

    at: float  # time.monotonic() of the reading
    cpu_s: float  # used_cpu_sys + used_cpu_user
    commands: dict[str, tuple[int, int]]  # command -> (calls, usec)
    net_out: int
    net_in: int
    fields: dict[str, Any]

    def field(self, name: str) -> int:
        return int(self.fields.get(name, 0))


def sample(port: int) -> Sample:
    client = redis.Redis(port=port, decode_responses=True, socket_timeout=10)
    try:
        info: dict[str, Any] = client.info("all")
    finally:
        client.close()
    commands = {
        name.removeprefix("cmdstat_"): (int(stats["calls"]), int(stats["usec"]))
        for name, stats in info.items()
        if name.startswith("cmdstat_")
    }
    return Sample(
        at=time.monotonic(),
        cpu_s=float(info["used_cpu_sys"]) + float(info["used_cpu_user"]),
        commands=commands,
        net_out=int(info["total_net_output_bytes"]),
        net_in=int(info["total_net_input_bytes"]),
        fields=info,
    )


def clients_by_command(port: int) -> dict[str, int]:
    """``CLIENT LIST`` counted by each connection's last command: who holds what."""
    client = redis.Redis(port=port, decode_responses=True, socket_timeout=10)
    try:
        listed = client.client_list()
    finally:
        client.close()
    counts = Counter(str(entry.get("cmd", "?")) for entry in listed)
    return dict(counts.most_common())


async def redis_version(url: str) -> str:
    """The server's version, as ``INFO server`` gives it."""
    client = redis_client(url)
    try:
        return str((await client.info("server")).get("redis_version", "?"))
    finally:
        await client.aclose()


MEMORY_FIELDS = ("used_memory", "used_memory_rss", "mem_clients_normal", "used_memory_peak")
CLIENT_FIELDS = ("connected_clients", "blocked_clients")


def delta(before: Sample, after: Sample) -> dict[str, Any]:
    """What the server did between two samples, and its state at the second."""
    seconds = after.at - before.at
    commands = {}
    for name, (calls, usec) in after.commands.items():
        calls0, usec0 = before.commands.get(name, (0, 0))
        if calls - calls0:
            commands[name] = {"calls": calls - calls0, "usec": usec - usec0}
    cpu = after.cpu_s - before.cpu_s
    return {
        "seconds": round(seconds, 3),
        "cpu_s": round(cpu, 6),
        "cpu_percent": round(100 * cpu / seconds, 2) if seconds > 0 else None,
        "net_out_bytes": after.net_out - before.net_out,
        "net_in_bytes": after.net_in - before.net_in,
        "commands": commands,
        "memory": {name: after.field(name) for name in MEMORY_FIELDS},
        "clients": {name: after.field(name) for name in CLIENT_FIELDS},
    }
