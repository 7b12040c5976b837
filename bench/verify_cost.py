"""The per-request check of revocast next to a plain ``jwt.decode`` and the usual alternatives.

Reproduce from the repository root::

    .venv/bin/python -m bench.verify_cost

One process on uvloop, one private redis-server (appendonly off, temp dir, loopback TCP) that
gets a fresh Ed25519 key through ``Store.signing.publish_key`` (then
``Store.signing.align_epochs``), so the started Verifiers hold it the way they do in
production. One access token (minted by revocast's ``TokenMinter``) is checked by every
case, timed per call with ``timeit`` (sync) or a loop of awaits (async), cases interleaved
per repeat so drift hits each alike:

- revocast ``Verifier.verify``, warm (memoized: expiry and revocation dict look-ups) and
  first sight (a verifier with the memo off: strict parse, Ed25519, claims, look-ups);
- ``jwt.decode``: plain PyJWT with the same key, no revocation check; and a bare Ed25519
  signature check, the floor for any local JWT check;
- the jwt-redis pattern (npm ``jwt-redis``): ``jwt.decode`` plus ``EXISTS`` of the token's
  ``jti`` key, present only for destroyed tokens; with redis-py's sync client (hiredis
  parser; the main figure) and its asyncio client (hiredis parser, uvloop);
- the express-session / connect-redis pattern: ``GET sess:<sid>`` plus ``JSON.parse`` of the
  stored session (here ``json.loads``); no JWT at all;
- the flask-jwt-extended blocklist pattern: ``jwt.decode`` plus ``SISMEMBER`` of the ``jti``
  in a blocklist set;
- a bare ``EXISTS`` round trip (sync and async): the floor of every Redis-backed pattern.

Each repeat stays well under the verifiers' max staleness, and the event loop runs between
repeats so their followers keep them fresh.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import time
import timeit
import uuid
from collections.abc import Awaitable, Callable, Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

import jwt
import redis
import redis.asyncio

from bench._env import add_quiet_arguments, run_and_record
from bench._rig import make_rig
from revocast.keys import ALGORITHM, b64url_decode
from revocast.settings import Settings
from revocast.verifier import Verifier
from revocast_tools.redis_server import RedisServer

RESULTS = Path(__file__).resolve().parent / "results" / "verify_cost.json"
BLOCKLIST_SIZE = 10_000
WARM = "revocast Verifier.verify, warm"
FIRST = "revocast Verifier.verify, first sight"
DECODE = "jwt.decode (PyJWT, no revocation check)"

SyncCase = Callable[[], object]
AsyncCase = Callable[[], Awaitable[object]]

NOTES = [
    "All cases run in one Python process on uvloop, against one private redis-server on "
    "127.0.0.1 (TCP loopback, appendonly off); per-call time = mean over one repeat; best "
    "and median over the repeats; cases interleaved per repeat so drift hits each alike.",
    "Sync cases: timeit, a calibrated number of calls per repeat. Async cases: a loop of "
    "sequential awaits inside the running event loop (one request in flight at a time), "
    "timed with time.perf_counter.",
    "Verifier.verify runs against a started Verifier whose cache got the key from Redis "
    "(Store.signing.publish_key); no I/O happens inside verify(). warm: the token was seen before, "
    "so the call is the memo lookup, the expiry check and the revocation lookups (sessions, "
    "user not-before, roles, key); first sight: a verifier with "
    "REVOCAST_VERIFY_MEMO_SIZE=0 parses and checks the signature and claims on every call, "
    "as on a token's first request.",
    "jwt.decode is PyJWT with the Ed25519 public key, algorithms=['EdDSA'], audience and "
    "issuer: signature plus claim checks, no revocation lookups. Ed25519 signature only: "
    "cryptography's Ed25519PublicKey.verify on the signing input.",
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
]


def calibrate(func: SyncCase, target_s: float) -> int:
    """Calls per repeat so that one repeat takes about ``target_s``."""
    number, elapsed = timeit.Timer(func).autorange()
    return max(1, round(number * target_s / elapsed))


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


async def timed(
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
    no_redis = {WARM, FIRST, DECODE, "Ed25519 signature only"}
    return {
        name: {
            "client": "asyncio" if name in async_cases else "sync",
            "redis_call": name not in no_redis,
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


async def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    server = RedisServer(tmp / "redis", appendonly=False)
    server.start()
    try:
        settings = Settings.from_values(
            redis_url=server.url, key_prefix=f"bench{uuid.uuid4().hex[:12]}"
        )
        if args.target_s > settings.freshness.max_staleness_s / 4:
            raise ValueError("a repeat must stay well under max_staleness_s")
        rig = await make_rig(settings, tmp / "keys")
        minted = rig.mint()
        token, public = minted.token, rig.public
        signing_input, _, signature = token.encode().rpartition(b".")
        raw_signature = b64url_decode(signature.decode())

        sync = redis.Redis(host="127.0.0.1", port=server.port, decode_responses=True)
        aio = redis.asyncio.Redis(host="127.0.0.1", port=server.port, decode_responses=True)
        # State each pattern keeps in Redis: other tokens revoked, this session stored.
        revoked = [secrets.token_urlsafe(16) for _ in range(BLOCKLIST_SIZE)]
        with sync.pipeline(transaction=False) as pipe:
            for jti in revoked[:1000]:
                pipe.set(jti, "true", ex=3600)  # jwt-redis: destroyed tokens
            pipe.sadd("blocklist", *revoked)  # flask-jwt-extended
            session = {
                "cookie": {"originalMaxAge": 86400000, "expires": "2026-12-01T00:00:00.000Z",
                           "httpOnly": True, "path": "/"},
                "user": {"id": minted.uid, "roles": ["reader"]},
            }  # fmt: skip
            pipe.set(f"sess:{minted.sid}", json.dumps(session), ex=86400)
            pipe.execute()

        def decode() -> dict[str, Any]:
            return jwt.decode(
                token, public, algorithms=[ALGORITHM], audience=settings.tokens.audience,
                issuer=settings.tokens.issuer,
            )  # fmt: skip

        def jwt_redis_sync() -> bool:
            if sync.exists(decode()["jti"]):
                raise RuntimeError("revoked")
            return True

        async def jwt_redis_async() -> bool:
            if await aio.exists(decode()["jti"]):
                raise RuntimeError("revoked")
            return True

        def express_session() -> object:
            raw = sync.get(f"sess:{minted.sid}")
            if raw is None:
                raise RuntimeError("no session")
            return json.loads(str(raw))

        def flask_blocklist() -> bool:
            if sync.sismember("blocklist", decode()["jti"]):
                raise RuntimeError("revoked")
            return True

        def exists_sync() -> object:
            return sync.exists(minted.jti)

        async def exists_async() -> object:
            return await aio.exists(minted.jti)

        verifier = Verifier(settings)
        cold = Verifier(settings.with_overrides(verify_memo_size=0))  # signature every call
        await verifier.start()
        await cold.start()
        try:
            if rig.kid not in verifier.cache.keys:
                raise RuntimeError("the verifier did not pick up the published key")
            if (
                verifier.verify(token).jti != decode()["jti"]
                or cold.verify(token).sid != minted.sid
            ):
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
                "Ed25519 signature only": lambda: public.verify(raw_signature, signing_input),
                "jwt-redis: jwt.decode + EXISTS jti (sync client)": jwt_redis_sync,
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
            results = await timed(sync_cases, async_cases, args.repeat, args.target_s)
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
    for name, r in results.items():
        print(f"  {name:<70} {r['best_us']:>9.2f} best {r['median_us']:>9.2f} median µs")
    return {
        "token_bytes": len(token),
        "results": results,
        "redis_server": f"{Path(server.binary).name} {rig.redis_version}",
        "environment": {
            "redis_parsers": parsers,
            "redis_py": version("redis"),
            "hiredis": version("hiredis"),
            "pyjwt": jwt.__version__,
            "event_loop": f"uvloop {version('uvloop')}",
        },
    }


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
    run_and_record("verify_cost", args, argv, measure, notes=NOTES)


if __name__ == "__main__":
    main()
