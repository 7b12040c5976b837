"""Users and sessions for the driver: users made as an operator would, sessions as clients do.

``login`` is the real path (``POST /v1/login``). ``mint`` is the bulk path for the
10,000-revocation burst and the 1,000/s latency runs, which a 2-core issuer cannot
log in fast enough: the issuer's own login script and token minter, called here
with the issuer's key directory. The tokens are the same; only the HTTP hop is skipped.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time

import httpx

from revocast.errors import Conflict, RevocastError, StoreUnavailable
from revocast.ids import new_refresh_token, new_session_id
from revocast.issuer.keyring import KeyRing
from revocast.issuer.passwords import Passwords
from revocast.issuer.tokens import TokenMinter
from revocast.issuer.users import add_user
from revocast_tools.chaos.cluster import Cluster
from revocast_tools.chaos.ledger import Ledger, TokenRecord

PASSWORD = "chaos-monkey-password"  # noqa: S105 (test users on a throwaway Redis)


class Accounts:
    """A fixed set of users; logins go round-robin over them."""

    def __init__(self, cluster: Cluster, ledger: Ledger, users: int = 8) -> None:
        self.cluster = cluster
        self.ledger = ledger
        self.usernames = [f"chaos{i}" for i in range(users)]
        self.uids: dict[str, str] = {}
        self.issuer = httpx.AsyncClient(
            base_url=cluster.issuer.url,
            timeout=httpx.Timeout(10.0, connect=2.0),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
        )
        self._passwords = Passwords(cluster.settings.passwords)
        self._turn = itertools.count()
        self._minter: TokenMinter | None = None

    async def create_users(self, attempts: int = 50) -> None:
        """Create every user that does not exist (all of them after Redis lost its data).

        Retried like an operator would: the first command after a Redis restart can
        fail on a connection that died with the old server.
        """
        for name in self.usernames:
            for attempt in range(attempts):
                try:
                    self.uids[name] = await add_user(
                        self.cluster.store, self._passwords, name, PASSWORD, []
                    )
                    break
                except Conflict:
                    break
                except StoreUnavailable:
                    if attempt == attempts - 1:
                        raise
                    await asyncio.sleep(0.1)

    def _next_user(self) -> str:
        return self.usernames[next(self._turn) % len(self.usernames)]

    async def login(self, username: str | None = None) -> TokenRecord | None:
        """``POST /v1/login`` (the next user's, unless named); None (counted) when the issuer
        cannot log the user in."""
        sent = time.monotonic()
        name = username or self._next_user()
        try:
            reply = await self.issuer.post(
                "/v1/login", json={"username": name, "password": PASSWORD}
            )
        except httpx.TransportError as exc:
            self._failed(type(exc).__name__)
            return None
        if reply.status_code != 200:
            self._failed(f"{reply.status_code} {_error_code(reply)}")
            return None
        body = reply.json()
        return self.ledger.add_token(
            body["access_token"], body["session_id"], body["user_id"], sent, time.monotonic()
        )

    async def mint(self) -> TokenRecord:
        """A session written by the login script and a token signed with the active key."""
        settings = self.cluster.settings
        name = self._next_user()
        sent = time.monotonic()
        uid = self.uids[name]
        keys = self.cluster.store.keys
        sid = new_session_id(keys, uid)
        kid = await self.cluster.store.signing.signing_kid() or ""
        issued_ms, roles_json, status_idx = await self.cluster.store.sessions.login(
            uid,
            sid,
            new_refresh_token(keys, uid),
            attempt=None,  # no password was checked: no login attempt to forgive
            user_agent="revocast-chaos",
            client="127.0.0.1",
        )
        if self._minter is None:
            self._minter = TokenMinter(settings.tokens, KeyRing(settings.key_path()))
        access = self._minter.mint(
            uid=self.uids[name],
            sid=sid,
            roles=json.loads(roles_json),
            issued_ms=issued_ms,
            kid=kid,
            status=(keys.of(sid).index, status_idx),
        )
        return self.ledger.add_token(access, sid, self.uids[name], sent, time.monotonic())

    async def sessions(
        self, count: int, *, concurrency: int = 8, mint: bool = False
    ) -> list[TokenRecord]:
        """Up to ``count`` new sessions, ``concurrency`` at a time; stops when a batch all fails."""
        made: list[TokenRecord] = []
        while len(made) < count:
            batch = min(concurrency, count - len(made))
            tokens = await asyncio.gather(*(self._session(mint) for _ in range(batch)))
            fresh = [t for t in tokens if t is not None]
            if not fresh:
                break
            made += fresh
        return made

    async def _session(self, mint: bool) -> TokenRecord | None:
        if not mint:
            return await self.login()
        try:
            return await self.mint()
        except RevocastError as exc:
            self._failed(exc.code)
            return None

    def _failed(self, reason: str) -> None:
        self.ledger.login_failures += 1
        self.ledger.login_errors[reason] += 1

    async def close(self) -> None:
        await self.issuer.aclose()


def _error_code(reply: httpx.Response) -> str:
    try:
        return str(reply.json().get("error", "?"))
    except (ValueError, AttributeError):
        return "?"
