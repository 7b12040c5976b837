"""One verifier process for ``bench.propagation`` and ``bench.topologies``; not run by hand.

Started as ``python -m bench._verifier_worker`` with the revocast settings in the environment.
It runs a real ``Verifier`` (its own Redis connection and a ``StreamFollower`` per stream: the
global one and each partition's) on uvloop, like the sidecar does, and talks to the parent
over stdin/stdout, one line per message:

- it prints ``ready`` once the first snapshots are taken;
- ``watch <token>``: wait until ``verify(token)`` accepts, then print ``accepting``;
- after each batch a follower applies (the verifier's ``on_applied`` hook, called right after
  the batch is in the cache), it looks the watched token up in the revocation cache the way
  ``verify()`` does (revoked key, session, user not-before, roles changed: O(1) dictionary
  look-ups with the claims decoded when the token was first accepted), so any event that
  kills the token counts: ``session_revoked`` (logout, has ``sid``) as well as
  ``user_revoked`` (block, has only ``uid``). The first time the token is rejected it prints
  ``revoked <applied> <checked> <code>``: ``time.monotonic()`` in that hook, right after the
  batch was applied (``verify()`` rejects the token from then on), and after the confirming
  ``verify()`` call, with the code it raised (the parent checks it is the one the action
  should cause). That call and the pipe write run through ``call_soon``, at the follower's
  next await (its next read from Redis), not inside the measured path.
  CLOCK_MONOTONIC is system-wide on Linux, so the parent can compare these readings with its
  own;
- ``ping``: print ``pong <time.monotonic()>`` (the parent checks the clocks agree);
- ``quit`` or end of input: stop the verifier and exit.

No polling and no spinning: between events the process sleeps in ``XREAD BLOCK``.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time

import jwt
import uvloop

from revocast.claims import AccessClaims
from revocast.errors import TokenRejected, VerifierStale
from revocast.events import AnyEvent
from revocast.settings import Settings
from revocast.verifier import Verifier

ACCEPT_TIMEOUT_S = 5.0


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def rejection(verifier: Verifier, token: str) -> str | None:
    """The code verify() fails with (TokenRejected or VerifierStale), or None if it accepts."""
    try:
        verifier.verify(token)
    except (TokenRejected, VerifierStale) as exc:
        return exc.code
    return None


class Watch:
    """The token being watched, and the hook that reports when a stream batch revokes it.

    Made before its verifier (whose ``on_applied`` is ``applied``), then ``bind``-ed to it.
    """

    def __init__(self) -> None:
        self._verifier: Verifier | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.token: str | None = None
        self.kid = ""
        self.claims: AccessClaims | None = None

    def bind(self, verifier: Verifier) -> None:
        self._verifier = verifier
        self._loop = asyncio.get_running_loop()

    @property
    def verifier(self) -> Verifier:
        if self._verifier is None:
            raise RuntimeError("the watch is not bound to its verifier yet")
        return self._verifier

    def cache_rejects(self, claims: AccessClaims) -> bool:
        """Whether the revocation cache now rejects the watched token: ``verify()``'s own
        revocation checks, in its order, on claims decoded once (no signature check)."""
        cache = self.verifier.cache
        if self.kid in cache.revoked_keys or claims.sid in cache.sessions:
            return True
        user = cache.users.get(claims.sub)
        if user is not None and claims.issued_ms <= user[0]:
            return True
        changed = cache.roles_changed.get(claims.sub)
        return changed is not None and claims.issued_ms <= changed[0]

    def applied(self, events: list[AnyEvent]) -> None:
        """The verifier's on_applied hook: a follower just applied a batch to the cache."""
        applied = time.monotonic()
        # O(1) look-ups in the path; the full verify() that confirms it and the report
        # run later, at the follower's next await (call_soon).
        token, claims, loop = self.token, self.claims, self._loop
        if (
            token is not None
            and claims is not None
            and loop is not None
            and self.cache_rejects(claims)
        ):
            self.token = self.claims = None
            loop.call_soon(self.confirm, token, applied)

    def confirm(self, token: str, applied: float) -> None:
        code = rejection(self.verifier, token)
        say(f"revoked {applied!r} {time.monotonic()!r} {code}")

    async def arm(self, token: str) -> None:
        deadline = time.monotonic() + ACCEPT_TIMEOUT_S
        while True:
            try:
                claims = self.verifier.verify(token)
                break
            except (TokenRejected, VerifierStale) as exc:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the fresh token is still rejected ({exc.code})") from None
            await asyncio.sleep(0.001)
        self.kid = str(jwt.get_unverified_header(token).get("kid", ""))
        self.token, self.claims = token, claims
        say("accepting")


async def main() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    watch = Watch()
    verifier = Verifier(Settings.from_env(), on_applied=watch.applied)
    watch.bind(verifier)
    await verifier.start()
    try:
        if not verifier.ready:
            raise RuntimeError("the verifier did not take its first snapshots")
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        say("ready")
        while line := (await reader.readline()).decode().strip():
            command, _, argument = line.partition(" ")
            if command == "watch":
                await watch.arm(argument)
            elif command == "ping":
                say(f"pong {time.monotonic()!r}")
            elif command == "quit":
                break
            else:
                raise RuntimeError(f"unknown command {command!r}")
    finally:
        await verifier.stop()


if __name__ == "__main__":
    uvloop.run(main())
