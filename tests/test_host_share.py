"""One follower per host (REVOCAST_SHARED_CACHE=1): verifiers of one host share a table.

Several verifiers in this process stand for a host's workers: each opens the lock and the
table on its own, as a process would. tests/test_host_share_processes.py kills real ones.
"""

from __future__ import annotations

import asyncio
import fcntl
import math
import os
import shutil
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from revocast.errors import VerifierStale
from revocast.settings import Settings
from revocast.store import Store
from revocast.verifier.host import HostFollower, host_dir
from revocast.verifier.table import (
    SESSION,
    TableFull,
    TableView,
    TableWriter,
    deployment_id,
)
from revocast.verifier.verifier import Verifier
from revocast_tools.proxy import TcpProxy
from tests.conftest import Issuer, VerifierFactory
from tests.support.servers import eventually
from tests.support.verdicts import is_rejected, rejects_with
from tests.test_key_lifecycle import kid_of, run


@pytest.fixture(autouse=True)
def _clean_host_dir(settings: Settings) -> Iterator[None]:
    yield
    shutil.rmtree(host_dir(settings), ignore_errors=True)


def host_of(verifier: Verifier) -> HostFollower:
    assert verifier.host is not None
    return verifier.host


async def test_workers_see_a_revocation_through_one_follower(
    issuer: Issuer, make_verifier: VerifierFactory, store: Store
) -> None:
    await issuer.add_user("alice")
    tokens = await issuer.login("alice")
    workers = [await make_verifier(shared_cache="1") for _ in range(4)]
    assert [host_of(w).leading for w in workers] == [True, False, False, False]
    for worker in workers:
        assert worker.ready
        assert worker.verify(tokens["access_token"]).sid == tokens["session_id"]
    await issuer.post_bearer("/v1/logout", tokens["access_token"])
    await asyncio.gather(
        *(eventually(partial(is_rejected, w, tokens["access_token"])) for w in workers)
    )

    # Only the follower reads Redis: one receipt for the host, counting its four workers.
    async def host_receipts() -> bool:
        found = [r for r in await store.presence.receipts() if " host " in r.name]
        return [r.workers for r in found] == [4]

    await eventually(host_receipts, timeout_s=5)


async def test_a_worker_started_late_sees_the_table(
    issuer: Issuer, make_verifier: VerifierFactory
) -> None:
    await issuer.add_user("alice")
    first = await make_verifier(shared_cache="1")
    revoked, live = await issuer.login("alice"), await issuer.login("alice")
    await issuer.post_bearer("/v1/logout", revoked["access_token"])
    await eventually(lambda: is_rejected(first, revoked["access_token"]))
    late = await make_verifier(shared_cache="1")
    assert not host_of(late).leading
    assert late.ready
    assert is_rejected(late, revoked["access_token"])
    assert late.verify(live["access_token"]).sid == live["session_id"]


async def test_another_takes_over_when_the_follower_stops(
    issuer: Issuer, settings: Settings
) -> None:
    await issuer.add_user("alice")
    tokens = await issuer.login("alice")
    shared = settings.with_overrides(shared_cache="1", max_staleness_s=1.0)
    leader, reader = Verifier(shared), Verifier(shared)
    await leader.start()
    await reader.start()
    try:
        assert host_of(leader).leading
        assert not host_of(reader).leading
        await leader.stop()
        await issuer.post_bearer("/v1/logout", tokens["access_token"])
        # The reader takes the lock, snapshots and writes the table: within the bound, and
        # never accepting the revoked token meanwhile.
        start = time.monotonic()
        while not host_of(reader).leading or not is_rejected(reader, tokens["access_token"]):
            try:
                reader.verify(tokens["access_token"])
                assert time.monotonic() - start < 1.0, "accepted a revoked token past the bound"
            except Exception:
                pass
            await asyncio.sleep(0.005)
            assert time.monotonic() - start < 3.0
        assert reader.ready
    finally:
        await reader.stop()


async def test_a_table_for_another_deployment_or_layout_is_never_read(
    issuer: Issuer, settings: Settings
) -> None:
    """Another process holds the lock and has left a fresh-looking table that is not this
    deployment's: the verifier must stay stale rather than read it."""
    await issuer.add_user("alice")
    tokens = await issuer.login("alice")
    folder = host_dir(settings)
    folder.mkdir(mode=0o700)
    lock = os.open(folder / "leader.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)
    verifier = Verifier(settings.with_overrides(shared_cache="1", max_staleness_s=0.5))
    await verifier.start()
    host = host_of(verifier)

    def refused() -> bool:
        return host.view.error is not None

    try:
        for bad in ("other-deployment", "other-layout"):
            write_fresh_table(folder / "table", bad, settings)
            host.view.close()  # read the path again
            host.view.error = None
            await eventually(refused, timeout_s=3)
            assert "table" in (host.error or "")
            assert not verifier.ready
            with pytest.raises(VerifierStale):
                verifier.verify(tokens["access_token"])
            assert host.view.mm is None
        # Freed, the lock goes to the verifier: it replaces the table with its own.
        os.close(lock)
        lock = -1
        await eventually(lambda: verifier.ready, timeout_s=3)
        assert verifier.verify(tokens["access_token"]).sid == tokens["session_id"]
    finally:
        if lock >= 0:
            os.close(lock)
        await verifier.stop()


def write_fresh_table(path: Path, how: str, settings: Settings) -> None:
    """A table that claims to be fresh now: for another deployment, or in another layout."""
    path.unlink(missing_ok=True)
    other = deployment_id("redis://elsewhere:6379", settings.redis.key_prefix)
    own = deployment_id(settings.redis.redis_url or "", settings.redis.key_prefix)
    writer = TableWriter(
        path,
        other if how == "other-deployment" else own,
        max_entries=1000,
        now_ms=lambda: int(time.time() * 1000),
    )
    writer.publish(time.monotonic() + 3600, 0.0, full=False, epoch="e")
    if how == "other-layout":
        writer.mm[8:12] = (99).to_bytes(4, "little")
    writer.close()


def test_a_full_table_refuses_the_entry_and_says_full(tmp_path: Path) -> None:
    deployment = deployment_id("redis://x", "p")
    now = int(time.time() * 1000)
    writer = TableWriter(tmp_path / "t", deployment, max_entries=1000, now_ms=lambda: now)
    view = TableView(tmp_path / "t", deployment)
    for i in range(1000):
        writer.put(SESSION, f"s{i}", now + 60_000, now + 60_000)
    with pytest.raises(TableFull):
        writer.put(SESSION, "one-more", now + 60_000, now + 60_000)
    assert view.open()
    assert view.lookup(SESSION, "s999") is not None
    writer.publish(time.monotonic(), 0.0, full=True, epoch="e")
    assert view.hot()[1] == -math.inf  # readers answer stale
    writer.publish(time.monotonic(), 0.0, full=False, epoch="e")
    assert math.isfinite(view.hot()[1])


def test_expired_entries_make_room(tmp_path: Path) -> None:
    deployment = deployment_id("redis://x", "p")
    clock = [int(time.time() * 1000)]
    writer = TableWriter(tmp_path / "t", deployment, max_entries=1000, now_ms=lambda: clock[0])
    for i in range(1000):
        writer.put(SESSION, f"s{i}", clock[0] + 10_000, clock[0] + 10_000)
    clock[0] += 20_000  # every token they covered has expired
    writer.put(SESSION, "next", clock[0] + 10_000, clock[0] + 10_000)
    view = TableView(tmp_path / "t", deployment)
    assert view.open()
    assert view.counts()[1] == 1
    assert view.lookup(SESSION, "next") is not None
    assert view.lookup(SESSION, "s1") is None


async def test_shared_cache_off_is_one_follower_per_verifier(
    issuer: Issuer, make_verifier: VerifierFactory, settings: Settings
) -> None:
    await issuer.add_user("alice")
    tokens = await issuer.login("alice")
    first, second = await make_verifier(shared_cache="0"), await make_verifier()
    assert first.host is None
    assert second.host is None
    assert not host_dir(settings).exists()
    await issuer.post_bearer("/v1/logout", tokens["access_token"])
    for verifier in (first, second):
        await eventually(partial(is_rejected, verifier, tokens["access_token"]))
        assert verifier.follower.events_applied >= 1  # each followed on its own


def test_prune_drops_what_expired_and_keeps_the_rest(tmp_path: Path) -> None:
    deployment = deployment_id("redis://x", "p")
    clock = [int(time.time() * 1000)]
    writer = TableWriter(tmp_path / "t", deployment, max_entries=10_000, now_ms=lambda: clock[0])
    for i in range(900):
        writer.put(SESSION, f"old{i}", clock[0] + 10_000, clock[0] + 10_000)
    for i in range(100):
        writer.put(SESSION, f"new{i}", clock[0] + 600_000, clock[0] + 600_000)
    assert writer.prune() == 0  # nothing expired yet: not even a scan
    clock[0] += 60_000
    assert writer.prune() == 900
    view = TableView(tmp_path / "t", deployment)
    assert view.open()
    assert view.counts()[1] == 100
    assert view.lookup(SESSION, "new7") is not None
    assert view.lookup(SESSION, "old7") is None


async def test_workers_of_a_stale_follower_answer_stale(
    issuer: Issuer, settings: Settings, proxy: TcpProxy
) -> None:
    """The follower loses Redis: its workers (which hold no connection) answer stale past the
    bound, as one process would, and fresh again once it is back."""
    await issuer.add_user("alice")
    tokens = await issuer.login("alice")
    shared = settings.with_overrides(redis_url=proxy.url, shared_cache="1", max_staleness_s=0.5)
    leader, reader = Verifier(shared), Verifier(shared)
    await leader.start()
    await reader.start()
    try:
        assert reader.verify(tokens["access_token"]).sid == tokens["session_id"]
        proxy.cut()
        await eventually(lambda: not reader.ready, timeout_s=3)
        with pytest.raises(VerifierStale):
            reader.verify(tokens["access_token"])
        proxy.restore()
        await eventually(lambda: reader.ready, timeout_s=5)
        assert host_of(leader).leading
    finally:
        await reader.stop()
        await leader.stop()
        shutil.rmtree(host_dir(shared), ignore_errors=True)


async def test_a_new_and_a_revoked_key_reach_every_worker(
    issuer: Issuer, make_verifier: VerifierFactory
) -> None:
    """Keys travel in the table's blob: a rotated key is trusted and a revoked one refused by
    workers that read Redis nowhere."""
    await issuer.add_user("alice")
    workers = [await make_verifier(shared_cache="1") for _ in range(2)]
    old = await issuer.login("alice")
    old_kid = kid_of(old["access_token"])
    result = await run(issuer, "revoke", old_kid)  # the active key: rotates first
    await asyncio.gather(
        *(eventually(partial(rejects_with, w, old["access_token"], "key_revoked")) for w in workers)
    )
    fresh = await issuer.login("alice")
    assert kid_of(fresh["access_token"]) == result["now_active"]
    for worker in workers:
        assert worker.verify(fresh["access_token"]).sid == fresh["session_id"]


async def test_no_room_for_the_table_is_stale_not_a_crash(
    issuer: Issuer, settings: Settings
) -> None:
    """The table cannot be written (here a folder squats on its temporary name): the verifier
    starts, answers stale, and follows once the table can be written."""
    await issuer.add_user("alice")
    tokens = await issuer.login("alice")
    folder = host_dir(settings)
    folder.mkdir(mode=0o700)
    squatter = folder / f"table.{os.getpid()}.tmp"
    squatter.mkdir()
    verifier = Verifier(settings.with_overrides(shared_cache="1", max_staleness_s=0.5))
    await verifier.start()
    try:
        assert not verifier.ready
        assert not host_of(verifier).leading
        with pytest.raises(VerifierStale):
            verifier.verify(tokens["access_token"])
        squatter.rmdir()
        await eventually(lambda: verifier.ready, timeout_s=3)
        assert verifier.verify(tokens["access_token"]).sid == tokens["session_id"]
    finally:
        await verifier.stop()


async def test_a_host_folder_removed_by_hand_does_not_break_the_stop(
    issuer: Issuer, make_verifier: VerifierFactory
) -> None:
    workers = [await make_verifier(shared_cache="1") for _ in range(2)]
    shutil.rmtree(host_dir(issuer.settings))
    for worker in workers:
        await worker.stop()  # no FileNotFoundError from the lock file that went with it
    assert not host_dir(issuer.settings).exists()
