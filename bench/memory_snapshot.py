"""Memory per revoked session in the verifier's cache, and the snapshot (bootstrap) time.

Reproduce from the repository root::

    .venv/bin/python -m bench.memory_snapshot --sizes 100000 1000000

A private redis-server (appendonly off, temp dir) holds a deployment of one partition
(``REVOCAST_PARTITIONS=1``, the single-server default), a published key and N revoked
sessions: pipelined ``ZADD <prefix>:{p0}:revoked:sessions`` with distinct forget-after
scores in the future (27-character session ids from ``new_session_id``, as the issuer makes
them). Then, for each N, two fresh Python processes
(``python -m bench.memory_snapshot --child``):

- timing (no tracemalloc): ``Follow.snapshot()`` of the partition's stream (its pages) then
  ``RevocationCache.merge()`` into an empty cache, i.e. a verifier's bootstrap, repeated;
  per repeat the server-side time of the Lua script alone (``SLOWLOG``, threshold 0 on the
  private server) and, in separate repeats, the raw script call without building the
  ``Snapshot`` (Lua + transfer + hiredis parse), so the time splits into Redis, reply
  transfer and parse, Python dict building and merge. Also ``Verifier.start()`` end to end,
  the RSS growth the kept cache caused, and the cost of one ``RevocationCache.prune()`` pass
  over it (the follower runs one a second);
- memory (tracemalloc on from before the snapshot): what the cache retains once the
  ``Snapshot`` is dropped and a collection ran, per entry.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import secrets
import statistics
import subprocess
import sys
import time
import tracemalloc
import uuid
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

import redis
from redis.asyncio import Redis

from bench._env import ROOT, add_quiet_arguments, run_and_record
from bench._rig import make_rig
from revocast.connection import redis_client
from revocast.ids import new_session_id
from revocast.keyspace import Keyspace, PartitionKeys
from revocast.settings import Settings
from revocast.store import Backend, Follow
from revocast.store.follow import FIRST, LAST, next_cursors
from revocast.verifier import Verifier
from revocast.verifier.cache import RevocationCache
from revocast_tools.redis_server import RedisServer

RESULTS = Path(__file__).resolve().parent / "results" / "memory_snapshot.json"
FILL_BATCH = 10_000
FORGET_AFTER_MS = 3_600_000  # scores an hour ahead: nothing expires during the run

NOTES = [
    "Fill: one partition (REVOCAST_PARTITIONS=1, the single-server default); revoked "
    "sessions only (the partition's zset <prefix>:{p0}:revoked:sessions: sid -> "
    "forget-after ms), distinct scores an hour ahead, 27-character ids from "
    "new_session_id(); plus one published key (jwks) and the epochs. Users, claims and keys "
    "tables are empty.",
    "Every measurement runs in a fresh Python process (python -m bench.memory_snapshot "
    "--child ...), with revocast's own client (redis-py asyncio, hiredis, decoding) on the "
    "default asyncio loop, against the private redis-server over loopback TCP.",
    "snapshot_merge_s: Follow.snapshot() of the partition's stream plus "
    "RevocationCache.merge() into an empty cache, what a verifier does at start for each "
    "stream; best and median over the repeats, each into a new cache "
    "(the previous one dropped first). The snapshot comes in pages (Follow.SNAPSHOT_PAGE "
    "entries per set, one script call each: 'pages'). lua_s: the scripts' own execution on "
    "the server, summed over the pages, from SLOWLOG (slowlog-log-slower-than 0; includes "
    "converting the Lua table to the reply, excludes the socket write); longest_page_lua_s: "
    "the longest one page held the server. raw_call_s: the same scripts called page by page "
    "without building the Snapshot (Lua + transfer + hiredis parse into Python lists), in "
    "separate repeats. "
    "split_of_median_repeat_s: the timed repeat with the median snapshot + merge, split into "
    "redis = its lua_s; transfer_and_parse = median over the raw-call repeats of raw_call_s "
    "minus that call's own Lua time; build_snapshot = its snapshot_s - lua_s - "
    "transfer_and_parse (dicts, int(float(score))); merge = its merge_s. redis_share: median "
    "over the timed repeats of lua_s / (snapshot + merge).",
    "verifier_start_s: Verifier(settings).start() in the same process (connect, read the "
    "partition count, script load, the global stream's and the partition's snapshots and "
    "merges, first stream polls), once, after the timed repeats.",
    "Memory, tracemalloc: started before the snapshot; retained = traced memory after merge, "
    "del snapshot and gc.collect(), minus before. It counts what the cache holds: the dict "
    "and the session-id str and until-ms int objects it references. peak = tracemalloc "
    "peak during snapshot + merge (the reply list, the Snapshot and the cache at once).",
    "Memory, RSS: VmRSS after the first timed snapshot + merge with the cache kept and the "
    "Snapshot dropped, minus VmRSS before it (after a warm-up snapshot of an empty prefix), "
    "per entry. Includes allocator overhead and any freed memory the allocator kept; "
    "vm_hwm is the process's peak RSS.",
    "prune_s: one RevocationCache.prune(now) over the full cache with nothing to prune "
    "(the follower calls it once a second on the event loop).",
]


# --- child: runs in a fresh process --------------------------------------------------------


def rss_bytes(field: str = "VmRSS") -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _command(entry: dict[str, Any]) -> str:
    command = entry.get("command", "")
    return command.decode(errors="replace") if isinstance(command, bytes) else str(command)


async def lua_seconds(client: Redis) -> tuple[float, float, float]:
    """From the slowlog: the snapshot scripts' time (every page's EVALSHA), the
    ZRANGEBYSCOREs of the revoked sessions inside them, and the longest page, in seconds."""
    entries = await client.slowlog_get(-1)
    script = [int(e["duration"]) for e in entries if _command(e).upper().startswith("EVALSHA")]
    zrange = [
        int(e["duration"])
        for e in entries
        if _command(e).startswith("ZRANGEBYSCORE") and ":revoked:sessions " in _command(e)
    ]
    if not script or not zrange:
        raise RuntimeError(f"no EVALSHA or ZRANGEBYSCORE in the slowlog: {entries[:8]}")
    return sum(script) / 1e6, sum(zrange) / 1e6, max(script) / 1e6


async def raw_pages(reader: Follow, partition: PartitionKeys) -> int:
    """Every page of the snapshot as the script's raw reply (no Snapshot built); the pages."""
    after, pages = FIRST, 0
    while after != LAST:
        reply = await reader.backend.call_on_reader(
            reader.snapshot_script(partition.stream, after), partition.stream.events
        )
        after = next_cursors(reply)
        pages += 1
    return pages


async def follow(url: str, prefix: str) -> tuple[Follow, PartitionKeys]:
    """revocast's reader of the deployment's streams (one client, 120 s socket timeout), and
    its one partition; after a warm-up snapshot of an empty prefix on the same client."""
    backend = Backend(Settings.from_values(redis_url=url, key_prefix=prefix), socket_timeout_s=120)
    keys = await backend.start()
    if keys.partitions != 1:
        raise RuntimeError(f"expected one partition, the deployment has {keys.partitions}")
    # Warm-up (code and script): the same client, another prefix.
    empty = Backend(
        Settings.from_values(redis_url=url, key_prefix=prefix + "-empty"), topology=backend.topology
    )
    await Follow(empty).snapshot((await empty.start()).partition(0).stream)
    return Follow(backend), keys.partition(0)


async def child_time(url: str, prefix: str, repeat: int) -> dict[str, Any]:
    admin = redis_client(url, socket_timeout_s=120)
    await admin.config_set("slowlog-log-slower-than", 0)
    await admin.config_set("slowlog-max-len", 1_000_000)  # every command of every page
    reader, partition = await follow(url, prefix)
    gc.collect()
    rss_before = rss_bytes()
    snapshot_s: list[float] = []
    merge_s: list[float] = []
    lua_s: list[float] = []
    zrange_s: list[float] = []
    longest_s: list[float] = []
    pages = 0
    raw_s: list[float] = []
    raw_lua_s: list[float] = []
    entries = 0
    rss_after = 0
    prune_s = 0.0
    net_out = 0
    for index in range(repeat):
        gc.collect()
        cache = RevocationCache()  # the previous repeat's cache goes here
        await admin.slowlog_reset()
        out0 = int((await admin.info("stats"))["total_net_output_bytes"])
        started = time.perf_counter()
        snapshot = await reader.snapshot(partition.stream)
        parsed = time.perf_counter()
        cache.merge(snapshot)
        merged = time.perf_counter()
        out1 = int((await admin.info("stats"))["total_net_output_bytes"])
        snapshot_s.append(parsed - started)
        merge_s.append(merged - parsed)
        lua, zrange, longest = await lua_seconds(admin)
        lua_s.append(lua)
        zrange_s.append(zrange)
        longest_s.append(longest)
        entries = len(snapshot.sessions)
        del snapshot
        if index == 0:
            net_out = out1 - out0
            gc.collect()
            rss_after = rss_bytes()
            t0 = time.perf_counter()
            pruned = cache.prune(int(time.time() * 1000))
            prune_s = time.perf_counter() - t0
            if pruned:
                raise RuntimeError("entries expired during the run")
    del cache
    for _ in range(repeat):
        gc.collect()
        await admin.slowlog_reset()
        started = time.perf_counter()
        pages = await raw_pages(reader, partition)
        raw_s.append(time.perf_counter() - started)
        raw_lua_s.append((await lua_seconds(admin))[0])
    gc.collect()
    settings = Settings.from_values(redis_url=url, key_prefix=prefix)
    verifier = Verifier(settings)
    started = time.perf_counter()
    await verifier.start()
    start_s = time.perf_counter() - started
    ready = verifier.ready and len(verifier.cache.sessions) == entries
    await verifier.stop()
    if not ready:
        raise RuntimeError("the verifier did not start with the full cache")
    await reader.backend.aclose()
    await admin.aclose()
    return {
        "entries": entries,
        "snapshot_s": snapshot_s,
        "merge_s": merge_s,
        "lua_s": lua_s,
        "lua_zrangebyscore_s": zrange_s,
        "longest_page_lua_s": longest_s,
        "pages": pages,
        "raw_call_s": raw_s,
        "raw_call_lua_s": raw_lua_s,
        "verifier_start_s": start_s,
        "reply_bytes": net_out,
        "rss_before": rss_before,
        "rss_after": rss_after,
        "vm_hwm": rss_bytes("VmHWM"),
        "prune_s": prune_s,
    }


async def child_memory(url: str, prefix: str) -> dict[str, Any]:
    reader, partition = await follow(url, prefix)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    snapshot = await reader.snapshot(partition.stream)
    cache = RevocationCache()
    cache.merge(snapshot)
    entries = len(snapshot.sessions)
    del snapshot
    gc.collect()
    retained, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    if len(cache.sessions) != entries:
        raise RuntimeError("the cache lost entries")
    await reader.backend.aclose()
    return {
        "entries": entries,
        "retained_bytes": retained - before,
        "peak_bytes": peak - before,
        "dict_getsizeof_bytes": sys.getsizeof(cache.sessions),
    }


def child_main(args: argparse.Namespace) -> None:
    if args.child == "time":
        result = asyncio.run(child_time(args.redis_url, args.prefix, args.repeat))
    else:
        result = asyncio.run(child_memory(args.redis_url, args.prefix))
    print(json.dumps(result))


# --- parent --------------------------------------------------------------------------------


def fill(url: str, keys: Keyspace, count: int) -> float:
    """ZADD ``count`` revoked sessions in pipelined batches; returns the seconds it took."""
    client = redis.Redis.from_url(url, decode_responses=True)
    key = keys.partition(0).revoked_sessions
    started = time.perf_counter()
    client.delete(key)
    base = int(time.time() * 1000) + FORGET_AFTER_MS
    done = 0
    while done < count:
        batch = min(FILL_BATCH, count - done)
        uid = secrets.token_hex(16)  # each batch a user's sessions, drawn in its partition
        with client.pipeline(transaction=False) as pipe:
            pipe.zadd(key, {new_session_id(keys, uid): base + done + i for i in range(batch)})
            pipe.execute()
        done += batch
    if client.zcard(key) != count:
        raise RuntimeError("fill lost entries")
    client.close()
    return time.perf_counter() - started


def run_child(mode: str, url: str, prefix: str, repeat: int) -> dict[str, Any]:
    args = [
        sys.executable, "-m", "bench.memory_snapshot", "--child", mode,
        "--redis-url", url, "--prefix", prefix, "--repeat", str(repeat),
    ]  # fmt: skip
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"child {mode} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def stats(values: Sequence[float]) -> dict[str, Any]:
    return {
        "best": round(min(values), 4),
        "median": round(statistics.median(values), 4),
        "all": [round(v, 4) for v in values],
    }


def summarize(
    size: int, fill_s: float, timing: dict[str, Any], memory: dict[str, Any]
) -> dict[str, Any]:
    total = [s + m for s, m in zip(timing["snapshot_s"], timing["merge_s"], strict=True)]
    # Transfer + parse comes from the raw-call repeats; the rest is split per timed repeat,
    # and the repeat with the median total is shown, so its parts add up to its total.
    transfer = statistics.median(
        [r - lu for r, lu in zip(timing["raw_call_s"], timing["raw_call_lua_s"], strict=True)]
    )
    index = sorted(range(len(total)), key=total.__getitem__)[(len(total) - 1) // 2]
    lua, snap = timing["lua_s"][index], timing["snapshot_s"][index]
    entries = timing["entries"]
    split = {
        "total_s": round(total[index], 4),
        "redis_lua_s": round(lua, 4),
        "transfer_and_parse_s": round(transfer, 4),
        "build_snapshot_s": round(snap - lua - transfer, 4),
        "merge_s": round(timing["merge_s"][index], 4),
    }
    shares = [lu / t for lu, t in zip(timing["lua_s"], total, strict=True)]
    return {
        "revoked_sessions": size,
        "entries_in_snapshot": entries,
        "fill_s": round(fill_s, 2),
        "snapshot_merge_s": stats(total),
        "snapshot_s": stats(timing["snapshot_s"]),
        "merge_s": stats(timing["merge_s"]),
        "lua_s": stats(timing["lua_s"]),
        "lua_zrangebyscore_s": stats(timing["lua_zrangebyscore_s"]),
        "pages": timing["pages"],
        "longest_page_lua_s": stats(timing["longest_page_lua_s"]),
        "raw_call_s": stats(timing["raw_call_s"]),
        "raw_call_lua_s": stats(timing["raw_call_lua_s"]),
        "split_of_median_repeat_s": split,
        "redis_share": round(statistics.median(shares), 3),
        "python_share": round(1 - statistics.median(shares), 3),
        "verifier_start_s": round(timing["verifier_start_s"], 4),
        "reply_bytes": timing["reply_bytes"],
        "prune_s": round(timing["prune_s"], 4),
        "memory": {
            "tracemalloc_retained_bytes": memory["retained_bytes"],
            "tracemalloc_bytes_per_entry": round(memory["retained_bytes"] / entries, 1),
            "tracemalloc_peak_bytes": memory["peak_bytes"],
            "dict_getsizeof_bytes": memory["dict_getsizeof_bytes"],
            "rss_growth_bytes": timing["rss_after"] - timing["rss_before"],
            "rss_bytes_per_entry": round((timing["rss_after"] - timing["rss_before"]) / entries, 1),
            "vm_hwm_bytes": timing["vm_hwm"],
        },
    }


async def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Fill, then time and trace each size in fresh child processes (blocking: nothing else
    runs on this loop)."""
    runs = []
    server = RedisServer(tmp / "redis", appendonly=False)
    server.start()
    try:
        prefix = f"bench{uuid.uuid4().hex[:12]}"
        # One partition: the snapshot measured is the one that holds every revoked session.
        settings = Settings.from_values(redis_url=server.url, key_prefix=prefix, partitions=1)
        rig = await make_rig(settings, tmp / "keys")
        for size in args.sizes:
            fill_s = fill(server.url, rig.keys, size)
            timing = run_child("time", server.url, prefix, args.repeat)
            memory = run_child("memory", server.url, prefix, args.repeat)
            if timing["entries"] != size or memory["entries"] != size:
                raise RuntimeError("the snapshot did not hold every revoked session")
            result = summarize(size, fill_s, timing, memory)
            runs.append(result)
            print(
                f"  {size:>9} revoked: snapshot+merge median "
                f"{result['snapshot_merge_s']['median']:.3f} s (lua "
                f"{result['split_of_median_repeat_s']['redis_lua_s']:.3f} s), "
                f"{result['memory']['tracemalloc_bytes_per_entry']:.0f} B/entry traced, "
                f"{result['memory']['rss_bytes_per_entry']:.0f} B/entry RSS",
                flush=True,
            )
    finally:
        server.stop()
    return {
        "runs": runs,
        "redis_server": f"{Path(server.binary).name} {rig.redis_version}",
        "environment": {
            "redis_py": version("redis"),
            "hiredis": version("hiredis"),
            "event_loop": "asyncio (default) in the child processes",
        },
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3, help="timed repeats per size (3)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON results path")
    parser.add_argument("--child", choices=["time", "memory"], help=argparse.SUPPRESS)
    parser.add_argument("--redis-url", help=argparse.SUPPRESS)
    parser.add_argument("--prefix", help=argparse.SUPPRESS)
    add_quiet_arguments(parser)
    args = parser.parse_args(argv)
    if args.child:
        child_main(args)
        return
    if args.repeat < 1 or any(n < 1 for n in args.sizes):
        parser.error("--repeat and --sizes must be at least 1")
    settings = {"sizes": args.sizes, "repeat": args.repeat}
    run_and_record("memory_snapshot", args, argv, measure, notes=NOTES, settings=settings)


if __name__ == "__main__":
    main()
