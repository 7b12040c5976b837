"""The per-request check of revocast next to the usual alternatives, same machine, same run.

Reproduce from the repository root::

    .venv/bin/python -m bench.alternatives

One process, one private redis-server (appendonly off, temp dir, loopback TCP). Every case
checks the same 494-byte-class access token (minted by revocast's ``TokenMinter``, Ed25519)
and is timed per call with ``timeit`` (sync) or a loop of awaits (async), cases interleaved
per repeat:

- revocast ``Verifier.verify``, warm (memoized: expiry and revocation dict look-ups) and
  first sight (a verifier with the memo off: strict parse, Ed25519, claims, look-ups);
- ``jwt.decode``: plain PyJWT with the same key, no revocation check (reference);
- the jwt-redis pattern (npm ``jwt-redis``): ``jwt.decode`` plus ``EXISTS`` of the token's
  ``jti`` key, present only for destroyed tokens; with redis-py's sync client (hiredis
  parser; the main figure) and its asyncio client (hiredis parser, uvloop);
- the express-session / connect-redis pattern: ``GET sess:<sid>`` plus ``JSON.parse`` of the
  stored session (here ``json.loads``); no JWT at all;
- the flask-jwt-extended blocklist pattern: ``jwt.decode`` plus ``SISMEMBER`` of the ``jti``
  in a blocklist set (10,000 revoked jtis in it);
- a bare ``EXISTS`` round trip (sync and async): the floor of every Redis-backed pattern.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import shlex
import sys
import tempfile
import time
import timeit
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import jwt
import redis
import redis.asyncio
import uvloop

from bench._env import add_quiet_arguments, environment, loadavg, wait_for_quiet
from bench._rig import make_rig
from bench.verify_cost import calibrate
from revocast.keys import ALGORITHM
from revocast.redis_server import RedisServer
from revocast.settings import Settings
from revocast.verifier import Verifier

RESULTS = Path(__file__).resolve().parent / "results" / "alternatives.json"
BLOCKLIST_SIZE = 10_000
WARM = "revocast Verifier.verify, warm"
FIRST = "revocast Verifier.verify, first sight"
JWT_REDIS_SYNC = "jwt-redis: jwt.decode + EXISTS jti (sync client)"

DECODE = "jwt.decode (PyJWT, no revocation check)"
NO_REDIS = {WARM, FIRST, DECODE}

SyncCase = Callable[[], object]
AsyncCase = Callable[[], Awaitable[object]]

NOTES = [
    "All cases run in one Python process on uvloop, against one private redis-server on "
    "127.0.0.1 (TCP loopback, appendonly off); per-call time = mean over one repeat; best "
    "and median over the repeats; cases interleaved per repeat so drift hits each alike.",
    "Sync cases: timeit, a calibrated number of calls per repeat. Async cases: a loop of "
    "sequential awaits inside the running event loop (one request in flight at a time), "
    "timed with time.perf_counter.",
    "Redis clients: redis-py with the hiredis parser (checked at run time; see "
    "environment.redis_parsers), decode_responses=True, one connection each.",
    "jwt-redis (npm): verify() is jwt.verify then EXISTS of the jti key that destroy() "
    "sets; mirrored as jwt.decode(token, key, algorithms=['EdDSA'], audience, issuer) plus "
    "EXISTS <jti>. The sync client is the main figure (a sync WSGI-style server doing it per "
    "request); the asyncio client is what an async server (the sidecar's shape) would use.",
    "express-session with connect-redis: per request GET sess:<sid> and JSON.parse of the "
    "stored session (a ~230-byte JSON object, cookie plus user); no signature check.",
    "flask-jwt-extended: decode_token (PyJWT decode) plus the token_in_blocklist_loader "
    f"callback, here SISMEMBER of the jti in a set holding {BLOCKLIST_SIZE} revoked jtis.",
    "Every Redis-backed case asserts its answer once before timing (not revoked / session "
    "found), so it measures the accepting path, as revocast's cases do.",
    "revocast first sight: a Verifier with REVOCAST_VERIFY_MEMO_SIZE=0 (signature and "
    "claims on every call); warm: the default memo, the token seen before.",
]


async def time_async(func: AsyncCase, number: int) -> float:
    started = time.perf_counter()
    for _ in range(number):
        await func()
    return (time.perf_counter() - started) / number


async def calibrate_async(func: AsyncCase, target_s: float) -> int:
    number = 10
    while True:
        per_call = await time_async(func, number)
        if per_call * number >= 0.2:
            return max(1, round(target_s / per_call))
        number *= 4


async def measure(
    sync_cases: dict[str, SyncCase],
    async_cases: dict[str, AsyncCase],
    repeat: int,
    target_s: float,
) -> dict[str, dict[str, Any]]:
    numbers = {name: calibrate(func, target_s) for name, func in sync_cases.items()}
    for name, afunc in async_cases.items():
        numbers[name] = await calibrate_async(afunc, target_s)
    times: dict[str, list[float]] = {name: [] for name in numbers}
    for _ in range(repeat):
        for name, func in sync_cases.items():
            times[name].append(timeit.Timer(func).timeit(numbers[name]) / numbers[name])
            await asyncio.sleep(0.05)  # let the verifiers' followers run
        for name, afunc in async_cases.items():
            times[name].append(await time_async(afunc, numbers[name]))
            await asyncio.sleep(0.05)
    return {
        name: {
            "client": "asyncio" if name in async_cases else "sync",
            "redis_call": name not in NO_REDIS,
            "best_us": round(min(per_call) * 1e6, 3),
            "median_us": round(sorted(per_call)[len(per_call) // 2] * 1e6, 3),
            "calls_per_repeat": numbers[name],
            "repeats_us": [round(t * 1e6, 3) for t in per_call],
        }
        for name, per_call in times.items()
    }


def parser_name(client: redis.Redis | redis.asyncio.Redis) -> str:
    """The RESP parser class of the client's idle connection (hiredis or pure Python)."""
    idle = getattr(client.connection_pool, "_available_connections", [])
    if not idle:
        return "unknown (no idle connection)"
    return type(getattr(idle[0], "_parser", None)).__name__


async def run(repeat: int, target_s: float) -> dict[str, Any]:
    run_at = datetime.now(UTC).isoformat(timespec="seconds")
    with tempfile.TemporaryDirectory(prefix="revocast-bench-") as tmp:
        server = RedisServer(Path(tmp) / "redis", appendonly=False)
        server.start()
        try:
            settings = Settings(redis_url=server.url, key_prefix=f"bench{uuid.uuid4().hex[:12]}")
            if target_s > settings.max_staleness_s / 4:
                raise ValueError("a repeat must stay well under max_staleness_s")
            rig = await make_rig(settings, Path(tmp) / "keys")
            minted = rig.mint()
            token, public = minted.token, rig.public

            sync = redis.Redis(host="127.0.0.1", port=server.port, decode_responses=True)
            aio = redis.asyncio.Redis(host="127.0.0.1", port=server.port, decode_responses=True)
            # State each pattern keeps in Redis: other tokens revoked, this session stored.
            revoked = [secrets.token_urlsafe(16) for _ in range(BLOCKLIST_SIZE)]
            with sync.pipeline(transaction=False) as pipe:
                for jti in revoked[:1000]:
                    pipe.set(jti, "true", ex=3600)  # jwt-redis: destroyed tokens
                pipe.sadd("blocklist", *revoked)  # flask-jwt-extended
                session = {
                    "cookie": {
                        "originalMaxAge": 86400000,
                        "expires": "2026-12-01T00:00:00.000Z",
                        "httpOnly": True,
                        "path": "/",
                    },
                    "user": {"id": minted.uid, "roles": ["reader"]},
                }
                pipe.set(f"sess:{minted.sid}", json.dumps(session), ex=86400)
                pipe.execute()

            def decode() -> dict[str, Any]:
                return jwt.decode(
                    token,
                    public,
                    algorithms=[ALGORITHM],
                    audience=settings.audience,
                    issuer=settings.issuer,
                )

            def jwt_redis_sync() -> bool:
                claims = decode()
                if sync.exists(claims["jti"]):
                    raise RuntimeError("revoked")
                return True

            async def jwt_redis_async() -> bool:
                claims = decode()
                if await aio.exists(claims["jti"]):
                    raise RuntimeError("revoked")
                return True

            def express_session() -> object:
                raw = sync.get(f"sess:{minted.sid}")
                if raw is None:
                    raise RuntimeError("no session")
                return json.loads(str(raw))

            def flask_blocklist() -> bool:
                claims = decode()
                if sync.sismember("blocklist", claims["jti"]):
                    raise RuntimeError("revoked")
                return True

            def exists_sync() -> object:
                return sync.exists(minted.jti)

            async def exists_async() -> object:
                return await aio.exists(minted.jti)

            verifier = Verifier(settings)
            cold = Verifier(settings.with_overrides(verify_memo_size=0))
            await verifier.start()
            await cold.start()
            try:
                if rig.kid not in verifier.cache.keys:
                    raise RuntimeError("the verifier did not pick up the published key")
                claims = verifier.verify(token)
                if claims.jti != decode()["jti"] or cold.verify(token).sid != minted.sid:
                    raise RuntimeError("verify and jwt.decode disagree")
                # Each pattern accepts the token before it is timed.
                jwt_redis_sync()
                await jwt_redis_async()
                express_session()
                flask_blocklist()
                if not sync.sismember("blocklist", revoked[0]) or not sync.exists(revoked[0]):
                    raise RuntimeError("the revoked state is not in Redis")
                sync_cases: dict[str, SyncCase] = {
                    WARM: lambda: verifier.verify(token),
                    FIRST: lambda: cold.verify(token),
                    DECODE: decode,
                    JWT_REDIS_SYNC: jwt_redis_sync,
                    "express-session: GET session + JSON parse (sync client)": express_session,
                    "flask-jwt-extended: jwt.decode + SISMEMBER blocklist (sync client)": (
                        flask_blocklist
                    ),
                    "Redis EXISTS round trip alone (sync client)": exists_sync,
                }
                async_cases: dict[str, AsyncCase] = {
                    "jwt-redis: jwt.decode + EXISTS jti (asyncio client)": jwt_redis_async,
                    "Redis EXISTS round trip alone (asyncio client)": exists_async,
                }
                results = await measure(sync_cases, async_cases, repeat, target_s)
                if not (verifier.ready and cold.ready):
                    raise RuntimeError("a verifier went stale during the measurement")
            finally:
                await verifier.stop()
                await cold.stop()
                parsers = {"sync": parser_name(sync), "asyncio": parser_name(aio)}
                sync.close()
                await aio.aclose()
        finally:
            server.stop()
    warm = results[WARM]
    for result in results.values():
        result["vs_warm_verify_best"] = round(result["best_us"] / warm["best_us"], 2)
        result["vs_warm_verify_median"] = round(result["median_us"] / warm["median_us"], 2)
    return {
        "benchmark": "alternatives",
        "run_at": run_at,
        "measured": f"mean per call, best and median of {repeat} repeats, same token every case",
        "main_figure": {"jwt-redis": JWT_REDIS_SYNC},
        "token_bytes": len(token),
        "notes": NOTES,
        "redis_server": f"{Path(server.binary).name} {rig.redis_version}",
        "redis_parsers": parsers,
        "results": results,
    }


def print_table(report: dict[str, Any]) -> None:
    header = f"{'case':<72} {'best µs':>9} {'median µs':>10} {'x warm':>8}"
    print(header)
    print("-" * len(header))
    for name, r in report["results"].items():
        print(
            f"{name:<72} {r['best_us']:>9.2f} {r['median_us']:>10.2f} "
            f"{r['vs_warm_verify_best']:>8.1f}"
        )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=7, help="repeats (default 7)")
    parser.add_argument(
        "--target-s", type=float, default=0.3, help="seconds per repeat and case (default 0.3)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON results path")
    add_quiet_arguments(parser)
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.target_s <= 0:
        parser.error("--repeat must be at least 1 and --target-s positive")
    words = sys.argv[1:] if argv is None else list(argv)

    quiet = wait_for_quiet(not args.no_wait)
    load_before = loadavg()
    report = uvloop.run(run(args.repeat, args.target_s))
    report["environment"] = environment(
        quiet,
        load_before,
        redis_server=report.pop("redis_server"),
        redis_parsers=report.pop("redis_parsers"),
        redis_py=version("redis"),
        hiredis=version("hiredis"),
        pyjwt=jwt.__version__,
        event_loop=f"uvloop {version('uvloop')}",
    )
    command = [".venv/bin/python", "-m", "bench.alternatives", *words]
    report = {"command": shlex.join(command)} | report
    print_table(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
