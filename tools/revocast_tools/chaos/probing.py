"""``GET /verify`` against each verifier on keep-alive connections, every answer recorded."""

from __future__ import annotations

import json
import time
from urllib.parse import urlsplit

import httpx

from revocast_tools.chaos.ledger import Ledger, Probe, TokenRecord
from revocast_tools.chaos.wire import Answer, WireError, WirePool


class VerifierClients:
    """Per verifier sidecar: a lean keep-alive pool for probes, an httpx client for the rest."""

    def __init__(self, ledger: Ledger, urls: list[str] | None = None, connections: int = 4) -> None:
        self.ledger = ledger
        self.connections = connections
        self.clients: list[httpx.AsyncClient] = []
        self.pools: list[WirePool] = []
        self.extend(urls or [])

    def extend(self, urls: list[str]) -> None:
        for url in urls:
            parts = urlsplit(url)
            self.pools.append(
                WirePool(parts.hostname or "127.0.0.1", parts.port or 80, self.connections)
            )
            self.clients.append(httpx.AsyncClient(base_url=url, timeout=2.0))

    def __len__(self) -> int:
        return len(self.clients)

    async def probe(self, verifier: int, token: TokenRecord, *, final: bool = False) -> Probe:
        """Ask one verifier about one token; status 0 when no answer came back."""
        sent = time.monotonic()
        try:
            answer: Answer | None = await self.pools[verifier].get(
                "/verify", {"Authorization": f"Bearer {token.access}"}
            )
        except WireError:
            answer = None
        received = time.monotonic()
        status, code, subject, session = 0, "", "", ""
        if answer is not None:
            status = answer.status
            subject = answer.headers.get("x-auth-subject", "")
            session = answer.headers.get("x-auth-session", "")
            if status != 200:
                code = _error_code(answer.body)
        probe = Probe(verifier, token.index, sent, received, status, subject, session, code, final)
        self.ledger.probes.append(probe)
        return probe

    async def get(self, verifier: int, path: str) -> httpx.Response | None:
        try:
            return await self.clients[verifier].get(path)
        except httpx.TransportError:
            return None

    async def close(self) -> None:
        for pool in self.pools:
            pool.close()
        for client in self.clients:
            await client.aclose()


def _error_code(body: bytes) -> str:
    """The ``error`` member of a JSON error body."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return "?"
    return str(parsed.get("error", "?")) if isinstance(parsed, dict) else "?"
