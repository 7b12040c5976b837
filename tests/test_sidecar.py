"""The verifier sidecar's HTTP contract: /verify, /healthz, /readyz."""

from __future__ import annotations

import httpx

from revocast.chaos.proxy import TcpProxy
from revocast.verifier import create_sidecar
from tests.conftest import Issuer
from tests.support.servers import eventually, serve


async def test_verify_contract(issuer: Issuer) -> None:
    uid = await issuer.add_user("alice", ["admin", "user"])
    tokens = await issuer.login("alice")
    async with (
        serve(create_sidecar(issuer.settings)) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        assert (await http.get("/healthz")).status_code == 200
        assert (await http.get("/readyz")).json()["ready"] is True
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        ok = await http.get("/verify", headers=bearer)
        assert ok.status_code == 200
        assert ok.headers["x-auth-subject"] == uid
        assert ok.headers["x-auth-session"] == tokens["session_id"]
        assert ok.headers["x-auth-roles"] == "admin,user"

        missing = await http.get("/verify")
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == 'Bearer realm="revocast"'
        garbage = await http.get("/verify", headers={"Authorization": "Bearer abc.def.ghi"})
        assert garbage.status_code == 401
        assert 'error="invalid_token"' in garbage.headers["www-authenticate"]

        await issuer.post_bearer("/v1/logout", tokens["access_token"])

        async def rejected() -> bool:
            return (await http.get("/verify", headers=bearer)).status_code == 401

        await eventually(rejected)
        assert (await http.get("/verify", headers=bearer)).json()["error"] == "session_revoked"


async def test_stale_sidecar_answers_503_and_is_not_ready(issuer: Issuer, proxy: TcpProxy) -> None:
    await issuer.add_user("alice")
    tokens = await issuer.login("alice")
    settings = issuer.settings.with_overrides(redis_url=proxy.url, max_staleness_s=0.3)
    async with serve(create_sidecar(settings)) as url, httpx.AsyncClient(base_url=url) as http:
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        assert (await http.get("/verify", headers=bearer)).status_code == 200
        proxy.cut()

        async def stale() -> bool:
            return (await http.get("/verify", headers=bearer)).status_code == 503

        await eventually(stale, timeout_s=3)
        ready = await http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["ready"] is False
        assert (await http.get("/healthz")).status_code == 200  # alive, just not fresh
        proxy.restore()

        async def recovered() -> bool:
            return (await http.get("/readyz")).status_code == 200

        await eventually(recovered, timeout_s=10)
        assert (await http.get("/verify", headers=bearer)).status_code == 200


async def test_sidecar_not_ready_before_first_snapshot(issuer: Issuer, proxy: TcpProxy) -> None:
    proxy.cut()
    settings = issuer.settings.with_overrides(redis_url=proxy.url, max_staleness_s=0.3)
    async with serve(create_sidecar(settings)) as url, httpx.AsyncClient(base_url=url) as http:
        ready = await http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["snapshots"] == 0
        assert (
            await http.get("/verify", headers={"Authorization": "Bearer a.b.c"})
        ).status_code == 503
