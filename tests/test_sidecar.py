"""The verifier sidecar's HTTP contract: /verify, /healthz, /readyz."""

from __future__ import annotations

import json

import httpx
import pytest

from revocast.verifier import create_sidecar
from revocast.verifier.body_header import MAX_BYTES, header_value
from revocast_tools.proxy import TcpProxy
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
        await issuer.add_user("nobody")
        plain = await issuer.login("nobody")
        bare = await http.get(
            "/verify", headers={"Authorization": f"Bearer {plain['access_token']}"}
        )
        assert bare.headers.get_list("x-auth-roles") == ["-"]  # never empty, never absent

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


async def test_verify_answers_every_method_and_path_below_it(issuer: Issuer) -> None:
    """Envoy's ext_authz (HTTP) sends the original method, and the original path under the
    configured prefix: each gets the same answer as GET /verify, never 404, 405 or 307."""
    uid = await issuer.add_user("alice")
    tokens = await issuer.login("alice")
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    async with (
        serve(create_sidecar(issuer.settings)) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PROPFIND"):
            for path in ("/verify", "/verify/", "/verify/api/orders/7?x=1"):
                ok = await http.request(method, path, headers=bearer)
                assert (ok.status_code, ok.headers["x-auth-subject"]) == (200, uid), (method, path)
                missing = await http.request(method, path)
                assert missing.status_code == 401, (method, path)
                assert missing.headers["www-authenticate"] == 'Bearer realm="revocast"'


async def test_every_answer_is_json(issuer: Issuer) -> None:
    """404, 405 and a repeated Authorization header (400: which one counts is for nobody to
    guess) come back in the one error shape."""
    await issuer.add_user("alice")
    tokens = await issuer.login("alice")
    bearer = f"Bearer {tokens['access_token']}"
    async with (
        serve(create_sidecar(issuer.settings)) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        for reply, status, code in (
            (await http.get("/nowhere"), 404, "not_found"),
            (await http.post("/healthz"), 405, "method_not_allowed"),
            (await http.get("/verify", headers=[("Authorization", bearer)] * 2), 400,
             "invalid_request"),
            (await http.post("/verify/x", headers=[("Authorization", bearer)] * 2), 400,
             "invalid_request"),
        ):  # fmt: skip
            assert reply.status_code == status
            assert reply.headers["content-type"] == "application/json"
            assert reply.json()["error"] == code


@pytest.mark.parametrize(
    ("query", "scope"),
    [
        ("role=%E2%9C%93", None),  # not Latin-1: the header could not be written, 500
        ("role=x%22,error=%22invalid_token", None),  # no quote breaks out of the value
        ("role=a%5Cb&role=ok", 'scope="ok"'),
    ],
)
async def test_the_challenge_carries_only_what_rfc_6750_allows_in_a_scope(
    issuer: Issuer, query: str, scope: str | None
) -> None:
    """Before: ``?role=✓`` made the sidecar fail with a 500 (UnicodeEncodeError writing the
    challenge), and a quote in a role ended the quoted value early."""
    await issuer.add_user("bob")
    bearer = {"Authorization": f"Bearer {(await issuer.login('bob'))['access_token']}"}
    async with (
        serve(create_sidecar(issuer.settings)) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        refused = await http.get(f"/verify?{query}", headers=bearer)
    assert (refused.status_code, refused.json()["error"]) == (403, "insufficient_scope")
    challenge = refused.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="revocast", error="insufficient_scope", ')
    assert challenge.count('"') == (8 if scope else 6), challenge
    if scope:
        assert challenge.endswith(f", {scope}")


async def test_a_route_may_ask_for_roles(issuer: Issuer) -> None:
    """``/verify?role=a&role=b`` (or ``role=a,b``): one of them, else 403 with an RFC 6750
    insufficient_scope challenge; the token itself is still checked first."""
    await issuer.add_user("mod", ["moderator"])
    await issuer.add_user("bob")
    moderator, user = await issuer.login("mod"), await issuer.login("bob")
    async with (
        serve(create_sidecar(issuer.settings)) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        for token, query, status in (
            (moderator, "role=moderator", 200),
            (moderator, "role=admin&role=moderator", 200),
            (moderator, "role=admin,moderator", 200),
            (user, "role=moderator", 403),
            (user, "role=", 200),
        ):
            bearer = {"Authorization": f"Bearer {token['access_token']}"}
            reply = await http.get(f"/verify?{query}", headers=bearer)
            assert reply.status_code == status, query
        refused = await http.get(
            "/verify?role=admin&role=moderator",
            headers={"Authorization": f"Bearer {user['access_token']}"},
        )
        assert refused.json()["error"] == "insufficient_scope"
        assert refused.headers["www-authenticate"] == (  # RFC 6750 §3: the roles in scope
            'Bearer realm="revocast", error="insufficient_scope", '
            'error_description="the token holds none of the roles in scope", '
            'scope="admin moderator"'
        )
        await issuer.post_bearer("/v1/logout", moderator["access_token"])

        async def revoked_first() -> bool:
            bearer = {"Authorization": f"Bearer {moderator['access_token']}"}
            return (await http.get("/verify?role=moderator", headers=bearer)).status_code == 401

        await eventually(revoked_first)


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


async def test_a_refusal_repeats_its_body_in_a_header_when_asked(issuer: Issuer) -> None:
    """For nginx's auth_request, which keeps an answer's headers and drops its body: with
    X-Revocast-Body-In-Header, every non-2xx answer of /verify, whichever path made it (the
    bearer fast path, Starlette's, a role check), carries its body in X-Revocast-Body too;
    a 2xx never does, nor an answer nobody asked for."""
    await issuer.add_user("alice")
    tokens = await issuer.login("alice")
    bearer = f"Bearer {tokens['access_token']}"
    ask = [("X-Revocast-Body-In-Header", "1")]
    async with (
        serve(create_sidecar(issuer.settings)) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        for path, headers, status in (
            ("/verify", [("Authorization", "Bearer abc.def.ghi")], 401),
            ("/verify/api/x", [], 401),
            ("/verify", [("Authorization", "Bearer !!!")], 400),
            ("/verify", [("Authorization", bearer)] * 2, 400),
            ("/verify?role=admin", [("Authorization", bearer)], 403),
        ):
            reply = await http.get(path, headers=headers + ask)
            assert reply.status_code == status, (path, headers)
            assert json.loads(reply.headers["x-revocast-body"]) == reply.json()
            unasked = await http.get(path, headers=headers)
            assert (unasked.status_code, unasked.json()) == (status, reply.json())
            assert "x-revocast-body" not in unasked.headers
        ok = await http.get("/verify", headers=[("Authorization", bearer), *ask])
        assert ok.status_code == 200
        assert "x-revocast-body" not in ok.headers


def test_a_body_header_is_printable_ascii_or_absent() -> None:
    """Never a character a header cannot hold: non-ASCII and control characters are escaped
    in the JSON (the same JSON once decoded); too long, or not JSON, gives no header."""
    plain = b'{"error":"x","detail":"what: do this"}'
    assert header_value(plain) == plain
    for detail in ("rôle é", "del \x7f", "tab \t, newline \n"):
        body = json.dumps({"detail": detail}, ensure_ascii=False).encode()
        value = header_value(body)
        assert value is not None
        assert value.isascii(), value
        assert value.decode().isprintable(), value
        assert json.loads(value) == {"detail": detail}
    assert header_value(b'{"detail": "' + b"x" * MAX_BYTES + b'"}') is None
    assert header_value("not json: é".encode()) is None
