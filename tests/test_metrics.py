"""/metrics on the sidecar and the issuer, in the Prometheus text format."""

from __future__ import annotations

import shutil

import httpx
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from revocast.verifier import Verifier, create_sidecar
from revocast.verifier.host import host_dir
from revocast.verifier.metrics import VerifierCollector
from tests.conftest import Issuer, VerifierFactory
from tests.support.servers import eventually, serve


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_sidecar_metrics_follow_what_happened(issuer: Issuer) -> None:
    await issuer.add_user("alice")
    tokens = await issuer.login("alice")
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    sidecar = create_sidecar(issuer.settings)
    async with serve(sidecar) as url, httpx.AsyncClient(base_url=url) as http:
        assert (await http.get("/verify", headers=bearer)).status_code == 200
        await issuer.post_bearer("/v1/logout", tokens["access_token"])

        async def rejected() -> bool:
            return (await http.get("/verify", headers=bearer)).status_code == 401

        await eventually(rejected)
        await http.get("/verify", headers={"Authorization": "Bearer a.b.c"})
        reply = await http.get("/metrics")
    assert reply.headers["content-type"].startswith("text/plain")
    seen = samples(reply.text)
    assert seen[("revocast_verify_total", (("outcome", "accepted"), ("reason", "")))] >= 1
    rejected_revoked = ("revocast_verify_total", (("outcome", "rejected"),
                                                  ("reason", "session_revoked")))  # fmt: skip
    assert seen[rejected_revoked] == 1
    assert seen[("revocast_verify_total", (("outcome", "rejected"), ("reason", "malformed_token")))]
    assert seen[("revocast_verifier_ready", ())] == 1
    assert (
        0
        <= seen[("revocast_verifier_staleness_seconds", ())]
        < issuer.settings.freshness.max_staleness_s
    )
    assert seen[("revocast_cache_entries", (("kind", "sessions"),))] == 1
    assert seen[("revocast_snapshots_total", ())] >= 1
    applied = seen[("revocast_events_applied_total", (("type", "SessionRevoked"),))]
    assert applied == 1
    assert seen[("revocast_propagation_seconds_count", ())] >= applied
    assert (
        seen[("revocast_propagation_seconds_bucket", (("le", "+Inf"),))]
        == seen[("revocast_propagation_seconds_count", ())]
    )
    assert 0 <= seen[("revocast_propagation_max_seconds", ())] < 1


async def test_the_workers_of_a_host_show_its_table_and_which_one_follows(
    issuer: Issuer, make_verifier: VerifierFactory
) -> None:
    """With REVOCAST_SHARED_CACHE=1 no worker keeps the revocations in its own cache: each
    shows the host's table (the same count in every one), and one of them follows."""
    await issuer.add_user("alice")
    for _ in range(3):
        tokens = await issuer.login("alice")
        await issuer.post_bearer("/v1/logout", tokens["access_token"])
    workers = [await make_verifier(shared_cache="1") for _ in range(2)]
    seen = [samples(generate_latest(_registry(worker)).decode()) for worker in workers]
    for worker in workers:
        await worker.stop()
    shutil.rmtree(host_dir(issuer.settings), ignore_errors=True)
    assert [s[("revocast_cache_entries", (("kind", "host_table"),))] for s in seen] == [3, 3]
    assert [s[("revocast_host_follower", ())] for s in seen] == [1, 0]
    assert all(s[("revocast_host_table_slots", ())] >= 3 for s in seen)
    assert not any(("revocast_cache_entries", (("kind", "sessions"),)) in s for s in seen)


def _registry(verifier: Verifier) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(VerifierCollector(verifier))
    return registry


async def test_issuer_metrics_count_by_route_template(issuer: Issuer) -> None:
    uid = await issuer.add_user("alice")
    tokens = await issuer.login("alice")
    await issuer.http.post("/v1/login", json={"username": "alice", "password": "wrong one"})
    await issuer.http.post(
        f"/v1/admin/users/{uid}/block",
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    )
    seen = samples((await issuer.http.get("/metrics")).text)
    login = "revocast_issuer_requests_total"
    assert seen[(login, (("method", "POST"), ("route", "/v1/login"), ("status", "200")))] == 1
    assert seen[(login, (("method", "POST"), ("route", "/v1/login"), ("status", "401")))] == 1
    block = (("method", "POST"), ("route", "/v1/admin/users/{user_id}/block"), ("status", "403"))
    assert seen[(login, block)] == 1
    assert not any(uid in str(key) for key in seen)  # ids never become label values
    assert ("revocast_verify_total", (("outcome", "accepted"), ("reason", ""))) in seen


async def test_wrong_methods_and_unknown_paths_are_counted_without_raw_paths(
    issuer: Issuer,
) -> None:
    """A 405 counts under the route that refused the method, any other path as "unmatched"
    (before Starlette 1.7 the route is found again by the middleware)."""
    assert (await issuer.http.get("/v1/login")).status_code == 405
    assert (await issuer.http.delete("/v1/admin/users/u-1/block")).status_code == 405
    assert (await issuer.http.get("/no/such/path")).status_code == 404
    seen = samples((await issuer.http.get("/metrics")).text)
    name = "revocast_issuer_requests_total"
    assert seen[(name, (("method", "GET"), ("route", "/v1/login"), ("status", "405")))] == 1
    block = (("method", "DELETE"), ("route", "/v1/admin/users/{user_id}/block"), ("status", "405"))
    assert seen[(name, block)] == 1
    assert seen[(name, (("method", "GET"), ("route", "unmatched"), ("status", "404")))] == 1
    assert not any("u-1" in str(key) or "/no/such" in str(key) for key in seen)
