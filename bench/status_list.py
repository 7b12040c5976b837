"""Token Status List size and generation time at 10,000 and 1,000,000 tokens.

Reproduce from the repository root::

    .venv/bin/python -m bench.status_list

A private redis-server (appendonly off, temp dir) holds one partition's list as the issuer's
scripts leave it: N indexes drawn (``status:leases`` with N members, pipelined ``ZADD``) and
a share of them INVALID (``SETBIT`` at random indexes, in the draft's bit order). For each N
and share, repeated, the issuer's own path (``revocast.issuer.status_lists``): the read
(``Store.sessions.status_list``: ``ZCARD`` then ``GET`` of the bitmap), the padding (``covered``: to
the next power of two of 2N indexes), the ZLIB compression (level 9 up to 64 KiB raw, 6 past
it) and base64url (``status_list.encode``), and the Ed25519 signature (``list_token``); sizes
are of the served token and of its compressed list. An issuer makes each partition's list at
most every 0.5 s whatever the number of readers, so generation time is a cost per partition
per half second.

Which share is realistic: an index is INVALID from its session's revocation until every token
of it has expired (one access-token lifetime, 5 min by default, plus 2 leeways and 1 s), and
then rests 301 s and is drawn again. So the INVALID share is about the sessions revoked in the
last ~5 minutes over the sessions live now: with every session ending by a logout once a day,
some 0.4 %; a mass revocation (every session of many users at once) lifts it briefly.
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import statistics
import time
import uuid
import zlib
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bench._env import add_quiet_arguments, run_and_record
from revocast.connection import redis_client
from revocast.issuer.status_lists import covered, list_token
from revocast.keys import SigningKey
from revocast.keyspace import Keyspace
from revocast.settings import Settings
from revocast.status_list import decode, list_uri, status_at
from revocast.store import Backend, Store
from revocast_tools.redis_server import RedisServer

RESULTS = Path(__file__).resolve().parent / "results" / "status_list.json"
ISSUER = "https://auth.example.com"
SHARES = [0.0, 0.001, 0.004, 0.01, 0.05, 0.1, 0.5]
BATCH = 10_000
NOTES = [
    "Sizes are bytes of the served Status List Token (header, claims, signature) and of its "
    "lst (ZLIB level 9 up to 64 KiB raw, else 6; base64url); the raw list is padded to the "
    "next power of two of 2N indexes, at least 8192.",
    "Generation is Store.sessions.status_list (ZCARD + GET on loopback) + covered + encode + sign, "
    "the issuer's path per partition at most every 0.5 s; median of the repeats. "
    "level9_ms/level9_bytes: the same raw list at level 9 alone, for comparison.",
    "INVALID indexes are drawn uniformly at random: index reuse scatters revoked sessions "
    "over the list, the worst case for compression at a given share.",
    "redis_memory_bytes: MEMORY USAGE (all samples) of the partition's status:bits and "
    "status:leases (a ZSET holding every index drawn), what the lists cost Redis.",
]


async def fill(url: str, keys: Keyspace, size: int, invalid: list[int]) -> None:
    """N drawn indexes, the given ones INVALID, as the scripts leave them."""
    p = keys.partition(0)
    client = redis_client(url)
    try:
        await client.delete(p.status_leases, p.status_bits)
        for start in range(0, size, BATCH):
            members = {str(i): 1 for i in range(start, min(size, start + BATCH))}
            await client.zadd(p.status_leases, members)
        async with client.pipeline(transaction=False) as pipe:
            for idx in invalid:
                pipe.setbit(p.status_bits, idx - idx % 8 + 7 - idx % 8, 1)
            await pipe.execute()
    finally:
        await client.aclose()


async def redis_bytes(url: str, keys: Keyspace) -> dict[str, int]:
    """What the list costs Redis: ``MEMORY USAGE`` of the bitmap and of the leases."""
    p = keys.partition(0)
    client = redis_client(url)
    try:
        bits = await client.memory_usage(p.status_bits, samples=0)
        leases = await client.memory_usage(p.status_leases, samples=0)
    finally:
        await client.aclose()
    return {"bits": int(bits or 0), "leases": int(leases or 0)}


async def measure_one(
    store: Store, settings: Settings, key: SigningKey, size: int, share: float, repeat: int
) -> dict[str, Any]:
    uri = list_uri(ISSUER, 0) or ""
    timings: dict[str, list[float]] = {"read": [], "pad_compress_sign": [], "total": []}
    token = ""
    for _ in range(repeat):
        start = time.perf_counter()
        raw, drawn = await store.sessions.status_list(0)
        read = time.perf_counter()
        token = list_token(settings, key, uri, covered(raw, drawn), int(time.time()))
        done = time.perf_counter()
        timings["read"].append(read - start)
        timings["pad_compress_sign"].append(done - read)
        timings["total"].append(done - start)
    lst = _claims(token)["status_list"]["lst"]
    served = decode(lst)
    level9 = []
    for _ in range(repeat):
        start = time.perf_counter()
        packed = zlib.compress(served, 9)
        level9.append(time.perf_counter() - start)
    return {
        "tokens": size,
        "invalid_share": share,
        "raw_list_bytes": len(served),
        "token_bytes": len(token),
        "lst_bytes": len(lst),
        "level9": {"ms": round(statistics.median(level9) * 1000, 2), "bytes": len(packed)},
        "ms": {
            name: round(statistics.median(values) * 1000, 2) for name, values in timings.items()
        },
        "served_invalid": sum(status_at(served, i) for i in range(size)),
    }


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    result: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return result


async def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    server = RedisServer(tmp / "redis", appendonly=False)
    server.start()
    runs = []
    try:
        settings = Settings.from_values(redis_url=server.url,
                                        key_prefix=f"bench{uuid.uuid4().hex[:12]}",
                                        partitions=1, issuer=ISSUER)  # fmt: skip
        backend = Backend(settings)
        keys = await backend.start()
        store = Store(backend)
        key = SigningKey.generate()
        rng = random.Random(22)
        redis_version = "?"
        try:
            client = redis_client(server.url)
            redis_version = str((await client.info("server")).get("redis_version", "?"))
            await client.aclose()
            for size in args.sizes:
                for share in args.shares:
                    invalid = rng.sample(range(size), int(size * share))
                    await fill(server.url, keys, size, invalid)
                    run = await measure_one(store, settings, key, size, share, args.repeat)
                    run["redis_memory_bytes"] = await redis_bytes(server.url, keys)
                    if run["served_invalid"] != len(invalid):
                        raise RuntimeError("the served list does not hold the INVALID indexes")
                    runs.append(run)
                    print(f"  {size:>9} tokens, {share:>6.1%} INVALID: token "
                          f"{run['token_bytes'] / 1024:8.1f} KiB, made in "
                          f"{run['ms']['total']:7.2f} ms (read {run['ms']['read']:.2f})",
                          flush=True)  # fmt: skip
        finally:
            await backend.aclose()
    finally:
        server.stop()
    return {
        "runs": runs,
        "redis_server": f"{Path(server.binary).name} {redis_version}",
        "environment": {"redis_py": version("redis")},
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--shares", type=float, nargs="+", default=SHARES)
    parser.add_argument("--repeat", type=int, default=5, help="timed repeats per case (5)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON results path")
    add_quiet_arguments(parser)
    args = parser.parse_args(argv)
    if (
        args.repeat < 1
        or any(n < 1 for n in args.sizes)
        or any(not 0 <= s <= 1 for s in args.shares)
    ):
        parser.error("--repeat and --sizes must be at least 1, --shares from 0 to 1")
    settings = {"sizes": args.sizes, "shares": args.shares, "repeat": args.repeat}
    run_and_record("status_list", args, argv, measure, notes=NOTES, settings=settings)


if __name__ == "__main__":
    main()
