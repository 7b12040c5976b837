"""Redis Pub/Sub next to Redis Streams: publish -> every subscriber process receives it.

Reproduce from the repository root::

    .venv/bin/python -m bench.pubsub --subscribers 1 4 16 --rounds 1000

A reference for the transport alone, not revocast's propagation (that is
``bench.propagation``: the stream read plus decoding and applying the event). A
private redis-server (appendonly off, temp dir); N subscriber processes
(``bench._pubsub_worker``, uvloop, redis-py asyncio with hiredis), each holding both a
``SUBSCRIBE`` on a channel and an ``XREAD BLOCK`` loop on a stream from its last id. The
publisher (this process, same client stack) alternates, round by round, ``PUBLISH`` of a
revocation-sized message and ``XADD`` of the same fields (``MAXLEN ~ 10000``), and waits
until every subscriber reported the message before the next round. So both transports are
measured in the same run, by the same processes, interleaved.

Latency per subscriber and message: the subscriber's ``time.monotonic()`` when redis-py
handed the message over, minus the publisher's ``time.monotonic()`` just before sending the
command (*from request*; upper bound) or just after its reply (*from reply*, can be
negative: Redis writes the message to the subscribers before replying to the publisher).
CLOCK_MONOTONIC is one clock for all processes on Linux (checked by a ping exchange).
"""

from __future__ import annotations

import argparse
import os
import secrets
import time
import uuid
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from bench._env import add_quiet_arguments, run_and_record
from bench._processes import Children, Worker, check_alive, clock_check, stop_workers
from bench._processes import start_workers as spawn_workers
from bench._redis_info import redis_version
from bench._stats import ms, summary
from revocast_tools.redis_server import RedisServer

RESULTS = Path(__file__).resolve().parent / "results" / "pubsub.json"
ROUND_TIMEOUT_S = 5.0
KINDS = ("pubsub", "stream")

NOTES = [
    "Transport only: the subscribers timestamp a message when redis-py returns it (Pub/Sub: "
    "PubSub.get_message; Streams: the XREAD reply), with no decoding or cache update. "
    "revocast's end-to-end figure (stream read, msgspec decode, cache apply) is "
    "bench.propagation.",
    "Every subscriber is its own OS process on uvloop with two connections (one SUBSCRIBEd, "
    "one in XREAD BLOCK 1000 COUNT 100 from its last id, like revocast's follower). The "
    "publisher is this process (uvloop, redis-py asyncio, hiredis); redis-server a separate "
    "process. Nothing is pinned; 2 CPUs here, so 16 subscribers is a contention test.",
    "Rounds alternate the transports (pubsub first on even rounds, stream first on odd), "
    "each waiting until every subscriber reported before the next message; the message: "
    "seq, type=session_revoked, v, sid (24 chars), uid (32 hex), until_ms, ts_ms; Pub/Sub "
    "sends them as one comma-separated string, XADD as fields (MAXLEN ~ 10000).",
    "from_request_ms: subscriber receive time minus the publisher's time.monotonic() just "
    "before the PUBLISH/XADD call; from_reply_ms: minus the time just after its reply (Redis "
    "queues the message to subscribers, or serves the blocked XREADs, before that reply "
    "reaches the publisher, so it can be negative). publish_rtt_ms: the call's own round "
    "trip. slowest_per_round: the last subscriber per message. Nearest-rank percentiles.",
    "PUBLISH's reply (subscribers reached) is checked to equal N every round.",
]


async def start_workers(
    children: Children, env: dict[str, str], args: list[str], count: int
) -> list[Worker]:
    workers: list[Worker] = []
    try:
        await spawn_workers(
            children,
            env,
            count,
            workers,
            module="bench._pubsub_worker",
            args=args,
            name="subscriber",
        )
    except BaseException:
        await stop_workers(children, workers)
        raise
    return workers


async def one_message(
    client: Redis, kind: str, seq: int, channel: str, stream: str, workers: Sequence[Worker]
) -> tuple[float, float, list[float]]:
    """Send one message; (sent, returned, receive times) on the shared monotonic clock."""
    fields = {
        "seq": str(seq),
        "type": "session_revoked",
        "v": "1",
        "sid": secrets.token_urlsafe(18),
        "uid": secrets.token_hex(16),
        "until_ms": str(int(time.time() * 1000) + 306_000),
        "ts_ms": str(int(time.time() * 1000)),
    }
    if kind == "pubsub":
        payload = ",".join(fields.values())
        sent = time.monotonic()
        reached = await client.publish(channel, payload)
        returned = time.monotonic()
        if reached != len(workers):
            raise RuntimeError(f"PUBLISH reached {reached} subscribers, not {len(workers)}")
    else:
        sent = time.monotonic()
        await client.xadd(stream, fields, maxlen=10_000, approximate=True)  # type: ignore[arg-type]
        returned = time.monotonic()
    received = []
    for worker in workers:
        words = await worker.receive(ROUND_TIMEOUT_S)
        if len(words) != 4 or words[:3] != ["recv", kind, str(seq)]:
            raise RuntimeError(f"{worker.child.name} said {words!r}, not recv {kind} {seq}")
        received.append(float(words[3]))
    return sent, returned, received


async def run_count(
    client: Redis,
    children: Children,
    env: dict[str, str],
    url: str,
    count: int,
    rounds: int,
    warmup: int,
) -> list[dict[str, Any]]:
    tag = uuid.uuid4().hex[:8]
    channel, stream = f"bench:{tag}:channel", f"bench:{tag}:stream"
    workers = await start_workers(children, env, [url, channel, stream], count)
    samples: dict[str, dict[str, list[float]]] = {
        kind: {"request": [], "reply": [], "rtt": [], "slowest": [], "slowest_request": []}
        for kind in KINDS
    }
    started = time.monotonic()
    try:
        clocks = await clock_check(workers)
        for index in range(warmup + rounds):
            order = KINDS if index % 2 == 0 else KINDS[::-1]
            for kind in order:
                sent, returned, received = await one_message(
                    client, kind, index, channel, stream, workers
                )
                if any(t < sent for t in received):
                    raise RuntimeError("a subscriber received a message before it was sent")
                if index < warmup:
                    continue
                s = samples[kind]
                s["request"] += [ms(t - sent) for t in received]
                s["reply"] += [ms(t - returned) for t in received]
                s["rtt"].append(ms(returned - sent))
                s["slowest"].append(ms(max(received) - returned))
                s["slowest_request"].append(ms(max(received) - sent))
            check_alive([w.child for w in workers])
    finally:
        await stop_workers(children, workers)
    wall = round(time.monotonic() - started, 1)
    runs: list[dict[str, Any]] = []
    for kind in KINDS:
        s = samples[kind]
        runs.append(
            {
                "transport": kind,
                "subscribers": count,
                "rounds": rounds,
                "warmup_rounds": warmup,
                "samples": len(s["request"]),
                "from_request_ms": summary(s["request"]),
                "from_reply_ms": summary(s["reply"]),
                "slowest_per_round_from_request_ms": summary(s["slowest_request"]),
                "slowest_per_round_from_reply_ms": summary(s["slowest"]),
                "publish_rtt_ms": summary(s["rtt"]),
                "received_before_reply": sum(v < 0 for v in s["reply"]),
                "clock_check": clocks,
                "wall_s_both_transports": wall,
            }
        )
        r = summary(s["request"])
        print(
            f"  {kind:<7} x{count:<3} from request p50 {r['p50']:.3f} p99 {r['p99']:.3f} "
            f"max {r['max']:.3f} ms",
            flush=True,
        )
    return runs


async def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    server = RedisServer(tmp / "redis", appendonly=False)
    children = Children(tmp)
    server.start()
    client: Redis = Redis.from_url(server.url, decode_responses=True)
    try:
        runs = []
        for count in args.subscribers:
            runs += await run_count(
                client, children, dict(os.environ), server.url, count, args.rounds, args.warmup
            )
        server_version = await redis_version(server.url)
    finally:
        await client.aclose()
        children.stop()
        server.stop()
    return {
        "runs": runs,
        "redis_server": f"{Path(server.binary).name} {server_version}",
        "environment": {
            "redis_py": version("redis"),
            "hiredis": version("hiredis"),
            "event_loop": f"uvloop {version('uvloop')} in every Python process",
        },
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--subscribers", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--rounds", type=int, default=1000, help="timed messages per transport")
    parser.add_argument("--warmup", type=int, default=50, help="untimed rounds first")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON results path")
    add_quiet_arguments(parser)
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.warmup < 0 or any(n < 1 for n in args.subscribers):
        parser.error("--rounds and --subscribers must be at least 1, --warmup at least 0")
    run_and_record("pubsub", args, argv, measure, notes=NOTES)


if __name__ == "__main__":
    main()
