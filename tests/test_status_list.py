"""Token Status Lists (issue 22, point 2): every access token names its session's index in its
partition's list; the issuer serves the lists as the draft says; every revoking path sets the
index INVALID within 1 s; an index is drawn again only once every token holding it expired.
Lists are read with tests/support/status_list_reader.py, written from the draft."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt as pyjwt
import pytest
from redis.asyncio import Redis

from revocast.errors import TokenRejected
from revocast.issuer import create_app
from revocast.settings import Settings
from revocast.status_list import MEDIA_TYPE
from tests.conftest import PASSWORD, Issuer, bearer
from tests.support import status_list_reader
from tests.support.servers import serve

ISSUER = "https://auth.example.com"
WITHIN_S = 1.0  # the issue's bound: INVALID served within 1 s of the revocation


@pytest.fixture(params=["single", "partitioned"])
def topology(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings(settings: Settings, topology: str) -> Settings:
    """Lists are served under REVOCAST_ISSUER, which must be a URL for them. ``topology`` is
    named here so that pytest before 9 parametrizes through this override (at pytest 8.2
    every test of this module lost its topology parameter: 20 setup errors)."""
    return settings.with_overrides(issuer=ISSUER)


async def fetch(issuer: Issuer, uri: str) -> httpx.Response:
    assert uri.startswith(f"{ISSUER}/statuslists/")
    return await issuer.http.get(urlsplit(uri).path)


async def status(issuer: Issuer, access_token: str) -> int:
    """The token's status as a Relying Party reads it from the list its claim names."""
    idx, uri = status_list_reader.reference(access_token)
    reply = await fetch(issuer, uri)
    assert reply.status_code == 200, reply.text
    jwks = (await issuer.http.get("/.well-known/jwks.json")).json()
    return status_list_reader.read(reply.text, jwks, uri).status(idx)


async def turns_invalid(issuer: Issuer, access_token: str) -> float:
    """Seconds until the served list says INVALID for the token (fails past WITHIN_S)."""
    start = time.monotonic()
    while await status(issuer, access_token) != 1:
        elapsed = time.monotonic() - start
        assert elapsed < WITHIN_S, "the list still says VALID a second after the revocation"
        await asyncio.sleep(0.02)
    return time.monotonic() - start


async def test_a_token_names_its_list_which_is_served_as_the_draft_says(issuer: Issuer) -> None:
    await issuer.add_user("alice")
    tokens = await issuer.login("alice")
    idx, uri = status_list_reader.reference(tokens["access_token"])
    partition = issuer.ctx.store.keys.of(tokens["session_id"]).index
    assert uri == f"{ISSUER}/statuslists/{partition}"
    reply = await issuer.http.get(urlsplit(uri).path, headers={"Host": "evil.example"})
    assert reply.status_code == 200
    assert reply.headers["content-type"] == MEDIA_TYPE
    assert reply.headers["cache-control"] == "public, max-age=1"
    jwks = (await issuer.http.get("/.well-known/jwks.json")).json()
    listed = status_list_reader.read(reply.text, jwks, uri)  # sub is the uri: Host is ignored
    assert listed.header["typ"] == "statuslist+jwt"
    assert listed.bits == 1
    assert listed.claims["exp"] - listed.claims["iat"] == listed.claims["ttl"] == 5
    assert listed.status(idx) == 0


async def test_sessions_draw_distinct_indexes(issuer: Issuer) -> None:
    await issuer.add_user("alice")
    refs = {status_list_reader.reference((await issuer.login("alice"))["access_token"])
            for _ in range(5)}  # fmt: skip
    assert len(refs) == 5


async def test_a_refreshed_token_keeps_the_index(issuer: Issuer) -> None:
    await issuer.add_user("alice")
    tokens = await issuer.login("alice")
    reply = await issuer.refresh(tokens["refresh_token"])
    assert reply.status_code == 200
    new = reply.json()["access_token"]
    assert status_list_reader.reference(new) == status_list_reader.reference(tokens["access_token"])


async def test_logout_sets_invalid_within_a_second(issuer: Issuer) -> None:
    await issuer.add_user("alice")
    gone, kept = await issuer.login("alice"), await issuer.login("alice")
    assert await status(issuer, gone["access_token"]) == 0
    await asyncio.sleep(0.6)  # the issuer's cached list is old enough to be made again
    assert (await issuer.post_bearer("/v1/logout", gone["access_token"])).status_code == 204
    await turns_invalid(issuer, gone["access_token"])
    assert await status(issuer, kept["access_token"]) == 0


async def test_logout_all_sets_every_session_invalid(issuer: Issuer) -> None:
    await issuer.add_user("alice")
    await issuer.add_user("bob")
    sessions = [await issuer.login("alice") for _ in range(3)]
    other = await issuer.login("bob")
    reply = await issuer.post_bearer("/v1/logout-all", sessions[0]["access_token"])
    assert reply.status_code == 204
    for tokens in sessions:
        await turns_invalid(issuer, tokens["access_token"])
    assert await status(issuer, other["access_token"]) == 0


async def test_a_password_change_sets_the_other_sessions_invalid(issuer: Issuer) -> None:
    await issuer.add_user("alice")
    current, other = await issuer.login("alice"), await issuer.login("alice")
    body = {"current_password": PASSWORD, "new_password": "n" * 12}
    reply = await issuer.http.post("/v1/password", json=body, headers=bearer(current))
    assert reply.status_code == 200, reply.text
    await turns_invalid(issuer, other["access_token"])
    assert await status(issuer, current["access_token"]) == 0


async def test_refresh_token_reuse_sets_the_session_invalid(
    settings: Settings, redis: Redis
) -> None:
    graceless = settings.with_overrides(refresh_grace_s=0)  # a second use is a replay
    app = create_app(graceless)
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as http:
        issuer = Issuer(url, http, graceless, app)
        await issuer.add_user("alice")
        tokens = await issuer.login("alice")
        assert (await issuer.refresh(tokens["refresh_token"])).status_code == 200
        assert (await issuer.refresh(tokens["refresh_token"])).status_code == 401
        await turns_invalid(issuer, tokens["access_token"])


async def moderated(issuer: Issuer) -> tuple[dict[str, Any], dict[str, Any], str]:
    """An admin's tokens, and alice's with her id."""
    await issuer.add_user("root", ["admin"])
    uid = await issuer.add_user("alice", ["user"])
    return await issuer.login("root"), await issuer.login("alice"), uid


async def test_block_sets_invalid(issuer: Issuer) -> None:
    admin, alice, uid = await moderated(issuer)
    reply = await issuer.http.post(f"/v1/admin/users/{uid}/block", headers=bearer(admin))
    assert reply.status_code == 200, reply.text
    await turns_invalid(issuer, alice["access_token"])


async def test_a_moderator_ending_a_session_sets_invalid(issuer: Issuer) -> None:
    admin, alice, _ = await moderated(issuer)
    path = f"/v1/admin/sessions/{alice['session_id']}"
    assert (await issuer.http.delete(path, headers=bearer(admin))).status_code in (200, 204)
    await turns_invalid(issuer, alice["access_token"])


async def test_a_role_change_retires_the_index_and_the_refresh_draws_a_new_one(
    issuer: Issuer,
) -> None:
    admin, alice, uid = await moderated(issuer)
    path = f"/v1/admin/users/{uid}/roles"
    reply = await issuer.http.put(path, json={"roles": ["editor"]}, headers=bearer(admin))
    assert reply.status_code == 200, reply.text
    await turns_invalid(issuer, alice["access_token"])  # minted with the old roles
    refreshed = await issuer.refresh(alice["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    new = refreshed.json()["access_token"]
    assert status_list_reader.reference(new) != status_list_reader.reference(alice["access_token"])
    assert await status(issuer, new) == 0  # the session lives on, with its new roles


async def test_an_index_is_drawn_again_only_after_its_tokens_expired_and_it_rested(
    issuer: Issuer, redis: Redis
) -> None:
    """Redis time cannot be moved, so the leases are: an index in use, or revoked with
    tokens still alive, is never drawn; one whose tokens expired is cleared, rests 301 s
    (longer than any list is cached), and is then drawn again, VALID."""
    await issuer.add_user("alice")
    first = await issuer.login("alice")
    idx, uri = status_list_reader.reference(first["access_token"])
    p = issuer.ctx.store.keys.partition(int(uri.rsplit("/", 1)[1]))
    assert (await issuer.post_bearer("/v1/logout", first["access_token"])).status_code == 204

    async def draw() -> int:
        tokens = await issuer.login("alice")
        drawn, drawn_uri = status_list_reader.reference(tokens["access_token"])
        return drawn if drawn_uri == uri else -1  # another partition's list: not this one

    assert idx not in [await draw() for _ in range(3)]  # its tokens may still be alive
    now_ms = int((await redis.time())[0]) * 1000
    await redis.zadd(p.status_leases, {str(idx): now_ms - 1})  # ... and now they expired
    assert idx not in [await draw() for _ in range(3)]  # cleared, resting
    assert await redis.getbit(p.status_bits, idx - idx % 8 + 7 - idx % 8) == 0
    await redis.zadd(p.status_leases, {str(idx): -(now_ms - 302_000)})  # rested
    drawn = [await draw() for _ in range(3)]
    assert idx in drawn


@pytest.mark.parametrize("path", ["/statuslists/x", "/statuslists/64", "/statuslists/01",
                                  "/statuslists/-1", "/statuslists/" + "9" * 40])  # fmt: skip
async def test_an_unknown_list_is_404_json(issuer: Issuer, path: str) -> None:
    reply = await issuer.http.get(path)
    assert reply.status_code == 404
    assert reply.json()["error"] == "not_found"


async def test_no_lists_without_an_issuer_url(issuer: Issuer) -> None:
    """A token outlives the request: its uri never comes from a Host header, so an issuer
    that is not named by a URL mints no status claim and serves no list."""
    settings = issuer.settings.with_overrides(issuer="revocast")
    async with serve(create_app(settings)) as url, httpx.AsyncClient(base_url=url) as http:
        await issuer.add_user("alice")
        login = await http.post("/v1/login", json={"username": "alice", "password": PASSWORD})
        claims = pyjwt.decode(login.json()["access_token"], options={"verify_signature": False})
        assert "status" not in claims
        reply = await http.get("/statuslists/0")
    assert reply.status_code == 404
    assert "REVOCAST_ISSUER" in reply.json()["detail"]


async def test_a_status_list_token_is_never_an_access_token(issuer: Issuer) -> None:
    """Both are signed with the same key; only typ tells them apart, and it does."""
    await issuer.add_user("alice")
    _, uri = status_list_reader.reference((await issuer.login("alice"))["access_token"])
    listed = (await fetch(issuer, uri)).text
    with pytest.raises(TokenRejected) as refused:
        issuer.ctx.verifier.verify(listed)
    assert refused.value.code == "wrong_token_type"
    reply = await issuer.http.get("/v1/sessions", headers={"Authorization": f"Bearer {listed}"})
    assert (reply.status_code, reply.json()["error"]) == (401, "wrong_token_type")
    # A library that ignores typ but checks the issuer or the audience refuses it too.
    jwks = pyjwt.PyJWKSet.from_dict((await issuer.http.get("/.well-known/jwks.json")).json())
    key = jwks[pyjwt.get_unverified_header(listed)["kid"]].key
    settings = issuer.settings
    for check in ({"issuer": settings.tokens.issuer}, {"audience": settings.tokens.audience}):
        with pytest.raises(pyjwt.InvalidTokenError):
            pyjwt.decode(listed, key, algorithms=["EdDSA"], **check)  # type: ignore[arg-type]


NODE_DIR = Path(__file__).resolve().parent / "support" / "node"  # status_list.mjs


def node_status_list() -> str:
    """node, with @sd-jwt/jwt-status-list installed, or a skip saying why."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("@sd-jwt/jwt-status-list: node is not on this machine")
    if not (NODE_DIR / "node_modules" / "@sd-jwt" / "jwt-status-list").is_dir():
        pytest.skip("@sd-jwt/jwt-status-list: not installed (./scripts/test-deps runs npm ci)")
    return node


async def test_sd_jwt_jwt_status_list_reads_the_lists(issuer: Issuer) -> None:
    """The openwallet-foundation's reader (with jose for the signature and typ) finds the
    logged-out session INVALID and the live one VALID, in the lists the tokens name."""
    node = node_status_list()
    await issuer.add_user("alice")
    gone, kept = await issuer.login("alice"), await issuer.login("alice")
    assert (await issuer.post_bearer("/v1/logout", gone["access_token"])).status_code == 204
    await turns_invalid(issuer, gone["access_token"])
    pairs = []
    for tokens in (gone, kept):
        _, uri = status_list_reader.reference(tokens["access_token"])
        pairs.append([tokens["access_token"], (await fetch(issuer, uri)).text])
    jwks = (await issuer.http.get("/.well-known/jwks.json")).json()
    process = await asyncio.create_subprocess_exec(
        node, str(NODE_DIR / "status_list.mjs"),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(
        process.communicate(json.dumps({"jwks": jwks, "pairs": pairs}).encode()), 30
    )
    assert json.loads(out) == [{"status": 1, "bits": 1}, {"status": 0, "bits": 1}]


class TestCluster:
    """The scripts draw and flag indexes in the session's own slot: Cluster runs them."""

    @pytest.fixture(params=[pytest.param("cluster", marks=pytest.mark.slow)])
    def topology(self, request: pytest.FixtureRequest) -> str:
        return str(request.param)

    async def test_logout_on_a_cluster(self, issuer: Issuer) -> None:
        await issuer.add_user("alice")
        tokens = await issuer.login("alice")
        assert (await issuer.post_bearer("/v1/logout", tokens["access_token"])).status_code == 204
        await turns_invalid(issuer, tokens["access_token"])
