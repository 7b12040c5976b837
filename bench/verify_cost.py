"""Per-call cost of ``Verifier.verify`` next to a plain ``jwt.decode`` of the same token.

Reproduce from the repository root::

    .venv/bin/python -m bench.verify_cost

A private redis-server (appendonly off, in a temp dir) gets a freshly generated Ed25519 key
through ``Writes.publish_key`` (then ``Writes.align_epochs``); a real Verifier is started
against it, so its cache holds the key the way it does in production. One access token is
minted with ``TokenMinter`` and timed with ``timeit`` through: the Verifier (staleness check,
header checks, signature, msgspec claims, revocation lookups), PyJWT's ``jwt.decode``
(signature plus iss/aud/exp/nbf/iat), and a bare Ed25519 signature check (the floor). Each
repeat is kept well under the verifier's max staleness, and the event loop runs between
repeats so the follower keeps it fresh.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shlex
import sys
import tempfile
import timeit
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt

from bench._env import add_quiet_arguments, git_state, loadavg, wait_for_quiet
from bench._rig import make_rig
from revocast.keys import ALGORITHM, b64url_decode
from revocast.redis_server import RedisServer
from revocast.settings import Settings
from revocast.verifier import Verifier

RESULTS = Path(__file__).resolve().parent / "results" / "verify_cost.json"


def calibrate(func: Callable[[], object], target_s: float) -> int:
    """Calls per repeat so that one repeat takes about ``target_s``."""
    number, elapsed = timeit.Timer(func).autorange()
    return max(1, round(number * target_s / elapsed))


async def measure(
    cases: dict[str, Callable[[], object]], repeat: int, target_s: float
) -> dict[str, dict[str, Any]]:
    numbers = {name: calibrate(func, target_s) for name, func in cases.items()}
    await asyncio.sleep(0.05)
    times: dict[str, list[float]] = {name: [] for name in cases}
    # Interleave the cases so slow drift (frequency, other load) hits each alike.
    for _ in range(repeat):
        for name, func in cases.items():
            times[name].append(timeit.Timer(func).timeit(numbers[name]) / numbers[name])
            await asyncio.sleep(0.05)  # let the follower run
    return {
        name: {
            "best_us": round(min(per_call) * 1e6, 3),
            "median_us": round(sorted(per_call)[len(per_call) // 2] * 1e6, 3),
            "calls_per_repeat": numbers[name],
            "repeats_us": [round(t * 1e6, 3) for t in per_call],
        }
        for name, per_call in times.items()
    }


async def run(repeat: int, target_s: float) -> dict[str, Any]:
    run_at = datetime.now(UTC).isoformat(timespec="seconds")
    git = git_state()
    with tempfile.TemporaryDirectory(prefix="revocast-bench-") as tmp:
        server = RedisServer(Path(tmp) / "redis", appendonly=False)
        server.start()
        try:
            settings = Settings(redis_url=server.url, key_prefix=f"bench{uuid.uuid4().hex[:12]}")
            if target_s > settings.max_staleness_s / 4:
                raise ValueError("a repeat must stay well under max_staleness_s")
            # A fresh key through Writes.publish_key and align_epochs, then one token
            # (TokenMinter, roles ["reader"], a session id in its user's partition).
            rig = await make_rig(settings, Path(tmp) / "keys")
            version = rig.redis_version
            token = rig.mint().token
            public = rig.public
            signing_input, _, signature = token.encode().rpartition(b".")
            raw_signature = b64url_decode(signature.decode())

            verifier = Verifier(settings)
            cold = Verifier(settings.with_overrides(verify_memo_size=0))  # signature every call
            await verifier.start()
            await cold.start()
            try:
                if rig.kid not in verifier.cache.keys:
                    raise RuntimeError("the verifier did not pick up the published key")
                claims = verifier.verify(token)
                decoded = jwt.decode(
                    token,
                    public,
                    algorithms=[ALGORITHM],
                    audience=settings.audience,
                    issuer=settings.issuer,
                )
                if decoded["sid"] != claims.sid:
                    raise RuntimeError("verify and jwt.decode disagree")
                cold.verify(token)
                cases: dict[str, Callable[[], object]] = {
                    "Verifier.verify warm": lambda: verifier.verify(token),
                    "Verifier.verify first sight": lambda: cold.verify(token),
                    "jwt.decode": lambda: jwt.decode(
                        token,
                        public,
                        algorithms=[ALGORITHM],
                        audience=settings.audience,
                        issuer=settings.issuer,
                    ),
                    "Ed25519 signature only": lambda: public.verify(raw_signature, signing_input),
                }
                results = await measure(cases, repeat, target_s)
                if not (verifier.ready and cold.ready):
                    raise RuntimeError("a verifier went stale during the measurement")
            finally:
                await verifier.stop()
                await cold.stop()
        finally:
            server.stop()
    baseline = results["jwt.decode"]["best_us"]
    for result in results.values():
        result["vs_jwt_decode"] = round(result["best_us"] / baseline, 3)
    return {
        "benchmark": "verify_cost",
        "run_at": run_at,
        "measured": f"best-of-{repeat} mean per call (timeit), same token for every case",
        "token_bytes": len(token),
        "notes": [
            "Verifier.verify runs against a started Verifier whose cache got the key from "
            "Redis (Writes.publish_key); no I/O happens inside verify().",
            "warm: the token was seen before, so the call is the memo lookup, the expiry check "
            "and the revocation lookups (sessions, user not-before, roles, key); first sight: "
            "a verifier with REVOCAST_VERIFY_MEMO_SIZE=0 parses and checks the signature and "
            "claims on every call, as on a token's first request.",
            "jwt.decode is PyJWT with the Ed25519 public key, algorithms=['EdDSA'], audience "
            "and issuer: signature plus claim checks, no revocation lookups.",
            "Ed25519 signature only: cryptography's Ed25519PublicKey.verify on the signing "
            "input, the floor for any local JWT check.",
            "Cases are interleaved per repeat; the event loop runs between repeats.",
        ],
        "environment": {
            "python": sys.version.split()[0],
            "pyjwt": jwt.__version__,
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "redis_server": f"{Path(server.binary).name} {version}",
            "git": git,
        },
        "results": results,
    }


def print_table(report: dict[str, Any]) -> None:
    header = f"{'case':<24} {'best µs':>9} {'median µs':>10} {'calls/repeat':>12} {'x jwt':>6}"
    print(header)
    print("-" * len(header))
    for name, result in report["results"].items():
        print(
            f"{name:<24} {result['best_us']:>9.2f} {result['median_us']:>10.2f} "
            f"{result['calls_per_repeat']:>12} {result['vs_jwt_decode']:>6.2f}"
        )
    print(f"\n{report['measured']}; token {report['token_bytes']} bytes.")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=5, help="repeats; the best one counts")
    parser.add_argument(
        "--target-s", type=float, default=0.5, help="seconds per repeat and case (default 0.5)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON results path")
    add_quiet_arguments(parser)
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.target_s <= 0:
        parser.error("--repeat must be at least 1 and --target-s positive")

    words = sys.argv[1:] if argv is None else list(argv)
    quiet = wait_for_quiet(not args.no_wait)
    load_before = loadavg()
    report = asyncio.run(run(args.repeat, args.target_s))
    report["environment"] |= {
        "cpus_usable": len(os.sched_getaffinity(0)),
        "loadavg_before": load_before,
        "loadavg_after": loadavg(),
        "quiet_wait": quiet,
    }
    command = [".venv/bin/python", "-m", "bench.verify_cost", *words]
    report = {"command": shlex.join(command)} | report
    print_table(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
