"""One deployment's Redis as revocast reaches it: topology, scripts by SHA, WAIT, errors.

Transport only: what the state means is the aggregates' (``users/``, ``sessions/``...).
``Backend.start()`` connects and fixes the partition count (stored in Redis when
the deployment first starts; a process configured with another count stops).
``run`` calls a script on the primary that holds its keys. With ``durable``, a
revocation is acknowledged only after ``WAIT`` confirms that the configured
number of replicas have it (DESIGN.md invariant 9); otherwise ``NotDurable``.
``on_primary`` and ``on_reader`` hand a piece of work the client of a key's primary, or of
the server reads go to (a replica when configured): only ``on_primary`` work may write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar, cast

from redis.asyncio import Redis
from redis.exceptions import (
    AskError,
    ClusterDownError,
    ReadOnlyError,
    RedisError,
    ResponseError,
    TryAgainError,
)

from revocast.errors import (
    Conflict,
    Forbidden,
    InvalidCredentials,
    InvalidRefreshToken,
    InvalidRequest,
    InvalidScope,
    NotDurable,
    NotFound,
    RedisUnreachable,
    RevocastError,
    SettingsError,
    SigningKeyUnavailable,
    StoreUnavailable,
    TooManyRevocations,
    UserBlocked,
)
from revocast.keyspace import Keyspace
from revocast.redis_url import parse_redis_url
from revocast.settings import DEFAULT_PARTITIONS, Settings
from revocast.store.constants import Constants
from revocast.store.contracts import Contract, Retry, Script, ScriptCall, assemble
from revocast.topology import Topology, connect

log = logging.getLogger("revocast.store")

T = TypeVar("T")
R = TypeVar("R")

_SCRIPT_ERRORS: dict[str, type[RevocastError]] = {
    "invalid_grant": InvalidRefreshToken,
    "invalid_credentials": InvalidCredentials,
    "user_blocked": UserBlocked,
    "conflict": Conflict,
    "forbidden": Forbidden,
    "not_found": NotFound,
    "key_revoked": SigningKeyUnavailable,
    "invalid_request": InvalidRequest,
    "invalid_scope": InvalidScope,
}


def _no_answer(exc: Exception) -> str:
    return f"Redis did not answer ({type(exc).__name__}): retry in a moment"


# redis-py from 6.0 raises a cluster node's refusals as these classes on any connection; before,
# only its own cluster client did, and our connections to each node got a bare ResponseError.
_CLUSTER_CODES = {"MOVED": AskError, "ASK": AskError, "TRYAGAIN": TryAgainError,
                  "CLUSTERDOWN": ClusterDownError}  # fmt: skip


def _cluster_refusal(exc: ResponseError) -> type[ResponseError] | None:
    """The class of a cluster's refusal (MOVED is an ``AskError``), whatever redis-py raised."""
    for kind in (AskError, TryAgainError, ClusterDownError):
        if isinstance(exc, kind):
            return kind
    # In a pipeline the reply follows the command: "... of pipeline caused error: ('MOVED ..."
    reply = str(exc).rpartition("of pipeline caused error: ")[2].lstrip("('\"")
    return _CLUSTER_CODES.get(reply.split(" ", 1)[0])


class Backend:
    """Connections, key layout and scripts for one ``REDIS_URL`` and key prefix."""

    def __init__(
        self,
        settings: Settings,
        *,
        topology: Topology | None = None,
        reads_from_replicas: bool = False,
        socket_timeout_s: float = 5.0,
    ) -> None:
        if topology is None:
            if settings.redis.redis_url is None:
                raise SettingsError("REDIS_URL is not set: export REDIS_URL=redis://HOST:6379/0")
            topology = connect(
                parse_redis_url(settings.redis.redis_url),
                read_from_replicas=reads_from_replicas,
                socket_timeout_s=socket_timeout_s,
            )
        self.settings = settings
        self.topology = topology
        min_replicas = settings.redis.min_replicas
        self.min_replicas = topology.default_min_replicas if min_replicas is None else min_replicas
        self.constants = Constants.of(settings)  # what this deployment's scripts are built with
        self._scripts: dict[str, Script] = {}
        self._keyspace: Keyspace | None = None

    @property
    def keys(self) -> Keyspace:
        """The key layout; known once ``start()`` has read the partition count."""
        if self._keyspace is None:
            raise RuntimeError("Cannot name keys, as the backend was not started.")
        return self._keyspace

    @property
    def started(self) -> bool:
        return self._keyspace is not None

    async def start(self) -> Keyspace:
        """Connect, and fix the partition count; SettingsError if it does not match Redis'."""
        if self._keyspace is not None:
            return self._keyspace
        probe = Keyspace(self.settings.redis.key_prefix)  # the global keys do not depend on N
        with self.errors():
            await self.topology.start()
            client = await self.topology.primary(probe.global_.partitions)
            if self.topology.kind == "single" and not self.topology.read_from_replicas:
                role = await client.execute_command("ROLE")  # type: ignore[no-untyped-call]
                if role and role[0] in ("slave", "replica"):
                    # Read as a replica, or a lagging one would look fresh (invariant 11).
                    log.warning("REDIS_URL names a replica: freshness comes from the heartbeat")
                    self.topology.read_from_replicas = True
            wanted = self.settings.redis.partitions or DEFAULT_PARTITIONS[self.topology.kind]
            stored = await client.get(probe.global_.partitions)
            if stored is None:
                await client.set(probe.global_.partitions, wanted, nx=True)
                stored = await client.get(probe.global_.partitions)
        count = int(stored or wanted)
        if self.settings.redis.partitions and count != self.settings.redis.partitions:
            raise SettingsError(
                f"this deployment has {count} partitions (fixed when it first started); "
                f"REVOCAST_PARTITIONS={self.settings.redis.partitions} does not match: unset it or "
                f"set it to {count}"
            )
        self._keyspace = Keyspace(self.settings.redis.key_prefix, count)
        return self._keyspace

    async def aclose(self) -> None:
        await self.topology.aclose()

    def script(self, contract: Contract[Any]) -> Script:
        """This deployment's text of a script (its own constants in it), by name."""
        script = self._scripts.get(contract.name)
        if script is None:
            script = self._scripts[contract.name] = assemble(contract, self.constants)
        return script

    async def run(self, call: ScriptCall[R], *, durable: bool | Callable[[R], bool] = False) -> R:
        """Run a script (``contracts.Contract.call`` built it) on the primary of its first key.

        ``durable`` (or a test of the reply: did the script revoke?) makes the
        call WAIT for ``min_replicas`` on the same connection before returning.
        """
        script, keys, args = self.script(call.contract), call.keys, call.args
        for attempt in (1, 2):
            with self.errors():
                try:
                    client = await self.topology.primary(keys[0])
                    if self.min_replicas == 0 or durable is False:
                        return cast(R, await script(client, keys, args))
                    return cast(R, await self._run_durably(client, script, keys, args, durable))
                except ResponseError as exc:
                    if _cluster_refusal(exc) is not AskError:
                        raise
                    # MOVED or ASK: the script did not run, so once more is safe.
                    self.topology.invalidate()
                    if attempt == 2:
                        raise StoreUnavailable(
                            "the Redis cluster moved the data twice meanwhile: retry in a moment"
                        ) from None
        raise AssertionError("unreachable")

    async def _run_durably(
        self,
        client: Redis,
        script: Script,
        keys: list[str],
        args: list[str | int],
        durable: bool | Callable[[Any], bool],
    ) -> Any:
        # WAIT counts the replicas that have this connection's writes: one connection for both.
        pinned = client.client()
        try:
            reply = await script(pinned, keys, args)
            if durable is True or (callable(durable) and durable(reply)):
                timeout_ms = self.settings.redis.replica_ack_timeout_ms
                acked = int(await pinned.wait(self.min_replicas, timeout_ms))
                if acked < self.min_replicas:
                    raise NotDurable(
                        f"{acked} of {self.min_replicas} replicas confirmed within "
                        f"{timeout_ms} ms; the change is on the primary only: repeat the request"
                    )
            return reply
        finally:
            # Shielded: a caller cancelled twice must still give the connection back.
            await asyncio.shield(pinned.aclose())

    async def on_primary(self, key: str, work: Callable[[Redis], Awaitable[T]]) -> T:
        """Run ``work`` (it may write) with the client of ``key``'s primary."""
        with self.errors():
            return await work(await self.topology.primary(key))

    async def on_reader(self, key: str, work: Callable[[Redis], Awaitable[T]]) -> T:
        """Run ``work`` (reads only) with the client reads of ``key`` go to: a replica's when
        the deployment reads from replicas, else the primary's."""
        with self.errors():
            return await work(await self.topology.reader(key))

    async def call_on_reader(self, call: ScriptCall[R], key: str) -> R:
        """A read-only script on the server reads of ``key`` go to (see ``on_reader``)."""
        script = self.script(call.contract)
        return cast(R, await self.on_reader(key, lambda c: script(c, call.keys, call.args)))

    # Typed single commands on the primary (the client decodes replies; redis-py's types
    # cannot say so).

    async def get(self, key: str) -> str | None:
        return cast(str | None, await self.on_primary(key, lambda c: c.get(key)))

    async def hget(self, key: str, name: str) -> str | None:
        return cast(str | None, await self.on_primary(key, lambda c: c.hget(key, name)))

    async def hmget(self, key: str, names: list[str]) -> list[str | None]:
        return cast(list[str | None], await self.on_primary(key, lambda c: c.hmget(key, names)))

    async def hgetall(self, key: str) -> dict[str, str]:
        return cast(dict[str, str], await self.on_primary(key, lambda c: c.hgetall(key)))

    async def smembers(self, key: str) -> set[str]:
        return cast(set[str], await self.on_primary(key, lambda c: c.smembers(key)))

    async def exists(self, key: str) -> bool:
        return bool(await self.on_primary(key, lambda c: c.exists(key)))

    @contextlib.contextmanager
    def errors(self) -> Iterator[None]:
        """Turn redis-py errors into revocast's; a failure may mean a failover: look again."""
        try:
            yield
        except ResponseError as exc:
            text = str(exc)
            if text == "retry":
                raise Retry from None
            if text.startswith(("UNBLOCKED", "LOADING", "MASTERDOWN")):
                # A server changing role (a failover, a resync) ended the command: transient.
                self.topology.invalidate()
                state = text.split(" ", 1)[0]
                raise StoreUnavailable(
                    f"Redis is changing roles ({state}): retry in a moment"
                ) from None
            # A script refuses with its code, then optionally why and what to do.
            code, _, detail = text.partition(" ")
            if code == "too_many_revocations":  # the detail is the ms to wait
                raise TooManyRevocations(max(1, math.ceil(int(detail) / 1000))) from None
            error = _SCRIPT_ERRORS.get(code)
            if error is not None:
                raise error(detail) from None
            if isinstance(exc, ReadOnlyError) or _cluster_refusal(exc) is not None:
                self.topology.invalidate()
                raise StoreUnavailable(_no_answer(exc)) from None
            # The raw text names scripts and lines: for the log, not for clients.
            log.error("redis refused a command: %s", exc)
            raise StoreUnavailable(
                "Redis refused a command (this server's log says why): retry, or tell an operator"
            ) from None
        except (RedisError, OSError) as exc:
            self.topology.invalidate()
            raise RedisUnreachable(_no_answer(exc)) from None
