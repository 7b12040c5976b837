"""Revocations from an upstream IdP (issue 12, point 4): OIDC Back-Channel Logout and pushed
CAEP events end the linked local sessions everywhere; forged, replayed or foreign tokens are
refused and change nothing. The IdP here signs with PyJWT and its own RSA key."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from functools import partial
from typing import Any

import httpx
import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from revocast.issuer import create_app
from revocast.settings import Settings
from tests.conftest import PASSWORD, Issuer, VerifierFactory
from tests.security.attacks import b64
from tests.support.idp import AUDIENCE, BACKCHANNEL, CAEP, IDP, IdP
from tests.support.servers import eventually, serve
from tests.support.stream import entries
from tests.support.verdicts import is_rejected, outcome
from tests.test_durability import Pair, pair, repeated  # noqa: F401 (pair: a fixture)


async def upstream_nonce(issuer: Issuer) -> tuple[str, str]:
    """(upstream_nonce, nonce): the secret a client keeps, the hash it sends the IdP."""
    reply = await issuer.http.post("/v1/login/upstream-nonce")
    assert reply.status_code == 200, reply.text
    return reply.json()["upstream_nonce"], reply.json()["nonce"]


async def linked_login(
    issuer: Issuer, idp: IdP, sub: str, sid: str | None, username: str = "alice"
) -> httpx.Response:
    """A login with the ID token the IdP issued for this login's nonce, as a client does."""
    secret, nonce = await upstream_nonce(issuer)
    body = {"username": username, "password": PASSWORD, "upstream_nonce": secret,
            "upstream_id_token": idp.id_token(sub, sid, nonce)}  # fmt: skip
    return await issuer.http.post("/v1/login", json=body)


async def login_linked(issuer: Issuer, idp: IdP, sub: str, sid: str) -> dict[str, Any]:
    reply = await linked_login(issuer, idp, sub, sid)
    assert reply.status_code == 200, reply.text
    tokens: dict[str, Any] = reply.json()
    return tokens


async def logout(issuer: Issuer, token: str) -> httpx.Response:
    return await issuer.http.post("/v1/signals/backchannel-logout", data={"logout_token": token})


async def test_backchannel_logout_by_sid_ends_that_session_everywhere(
    linked: Issuer, idp: IdP, make_verifier: VerifierFactory
) -> None:
    alice = await linked.add_user("alice")
    verifiers = [await make_verifier(), await make_verifier()]
    mine = await login_linked(linked, idp, "upstream-alice", "idp-session-1")
    other = await login_linked(linked, idp, "upstream-alice", "idp-session-2")
    reply = await logout(linked, idp.logout_token(sid="idp-session-1"))
    assert reply.status_code == 200, reply.text
    events = linked.ctx.store.keys.of(alice).stream.events
    _, last = (await entries(linked.ctx.backend, events))[-1]
    assert (last["sid"], last["actor_kind"]) == (mine["session_id"], "upstream")
    assert reply.headers["Cache-Control"] == "no-store"
    assert reply.headers["Revocast-Event-Id"]
    for verifier in verifiers:
        await eventually(partial(is_rejected, verifier, mine["access_token"]))
        assert outcome(verifier, other["access_token"]) == "accepted"  # only that session
    assert (await linked.refresh(mine["refresh_token"])).status_code == 401


async def test_backchannel_logout_by_sub_ends_every_session(
    linked: Issuer, idp: IdP, make_verifier: VerifierFactory
) -> None:
    await linked.add_user("alice")
    verifier = await make_verifier()
    sessions = [await login_linked(linked, idp, "upstream-alice", f"s{i}") for i in range(2)]
    reply = await logout(linked, idp.logout_token(sub="upstream-alice"))
    assert reply.status_code == 200, reply.text
    for tokens in sessions:
        await eventually(partial(is_rejected, verifier, tokens["access_token"]))


def forgeries(idp: IdP) -> dict[str, str]:
    stranger = IdP.new()
    pem = idp.public_pem().encode()
    now = int(time.time())
    claims = {"iss": IDP, "aud": AUDIENCE, "iat": now, "jti": "x1", "exp": now + 60,
              "sid": "idp-session-1", "events": {BACKCHANNEL: {}}}  # fmt: skip
    unsigned = pyjwt.encode(claims, "", algorithm="none", headers={"typ": "logout+jwt"})
    return {
        "another key": stranger.logout_token(sid="idp-session-1"),
        "alg none": unsigned,
        "HS256 with the public key": _hs256(claims, pem),
        "wrong audience": idp.logout_token(sid="idp-session-1", aud="someone-else"),
        "wrong issuer": idp.logout_token(sid="idp-session-1", iss="https://evil.example"),
        "expired": idp.logout_token(sid="idp-session-1", exp=int(time.time()) - 600),
        "nonce": idp.logout_token(sid="idp-session-1", nonce="n"),
        "no events": idp.sign({"sid": "idp-session-1", "exp": int(time.time()) + 60}, "logout+jwt"),
        "neither sid nor sub": idp.logout_token(),
        "an ID token": idp.id_token("upstream-alice", "idp-session-1", None),
        "not a JWT": "garbage",
    }


def _hs256(claims: dict[str, Any], secret: bytes) -> str:
    """HS256 keyed with ``secret`` (here the IdP's public key: algorithm confusion)."""
    signing = f"{b64({'alg': 'HS256', 'typ': 'logout+jwt', 'kid': 'idp-1'})}.{b64(claims)}"
    return f"{signing}.{b64(hmac.new(secret, signing.encode(), hashlib.sha256).digest())}"


async def test_forged_foreign_and_replayed_tokens_change_nothing(
    linked: Issuer, idp: IdP, make_verifier: VerifierFactory
) -> None:
    await linked.add_user("alice")
    verifier = await make_verifier()
    tokens = await login_linked(linked, idp, "upstream-alice", "idp-session-1")
    for name, token in forgeries(idp).items():
        reply = await logout(linked, token)
        assert reply.status_code == 400, (name, reply.text)
        assert reply.json()["error"] in ("invalid_token", "invalid_request"), name
    assert outcome(verifier, tokens["access_token"]) == "accepted"  # nothing happened

    valid = idp.logout_token(sid="idp-session-1")
    assert (await logout(linked, valid)).status_code == 200
    replay = await logout(linked, valid)
    assert (replay.status_code, replay.json()["error"]) == (400, "invalid_token")
    again = await login_linked(linked, idp, "upstream-alice", "idp-session-1")  # a new session
    assert (await logout(linked, valid)).status_code == 400  # the replay cannot end it
    await eventually(partial(is_rejected, verifier, tokens["access_token"]))
    assert outcome(verifier, again["access_token"]) == "accepted"


async def test_an_unlinked_sid_falls_back_to_the_sub_and_jwt_typ_passes(
    linked: Issuer, idp: IdP, make_verifier: VerifierFactory
) -> None:
    await linked.add_user("alice")
    verifier = await make_verifier()
    tokens = await login_linked(linked, idp, "upstream-alice", "s1")
    token = idp.sign({"sid": "never-linked", "sub": "upstream-alice", "exp": int(time.time()) + 60,
                      "events": {BACKCHANNEL: {}}}, "JWT")  # fmt: skip
    assert (await logout(linked, token)).status_code == 200
    await eventually(partial(is_rejected, verifier, tokens["access_token"]))


async def test_a_logout_token_older_than_its_jti_memory_is_refused(
    linked: Issuer, idp: IdP, make_verifier: VerifierFactory
) -> None:
    """Issue 19 point 9: a jti is remembered a day, so a token issued over a day ago could be
    replayed unseen (a captured token with a long exp worked again a day later: 200)."""
    await linked.add_user("alice")
    verifier = await make_verifier()
    tokens = await login_linked(linked, idp, "upstream-alice", "s1")
    now = int(time.time())
    old = idp.logout_token(sid="s1", iat=now - 86_400 - 60, exp=now + 30 * 86_400)
    reply = await logout(linked, old)
    assert (reply.status_code, reply.json()["error"]) == (400, "invalid_token"), reply.text
    assert "older than" in reply.json()["error_description"]
    assert reply.headers["Cache-Control"] == "no-store"
    assert outcome(verifier, tokens["access_token"]) == "accepted"  # nothing happened


async def _stream_length(issuer: Issuer, uid: str) -> int:
    events = issuer.ctx.store.keys.of(uid).stream.events
    return int(await issuer.ctx.backend.on_primary(events, lambda c: c.xlen(events)))


@pytest.mark.parametrize("receiver", ["backchannel", "caep"])
async def test_concurrent_copies_of_a_token_act_once(
    linked: Issuer, idp: IdP, receiver: str
) -> None:
    """Issue 19 point 9: 20 copies of one token at once gave two to five 200s (each acted,
    each wrote an event). The jti is claimed before acting: exactly one acts; a copy that
    arrives while it acts gets 503 with Retry-After, one that arrives after gets 400."""
    uid = await linked.add_user("alice")
    for _ in range(4):  # four sessions linked to the IdP's s1: four revocations to write
        await login_linked(linked, idp, "upstream-alice", "s1")
    before = await _stream_length(linked, uid)
    if receiver == "backchannel":
        token = idp.logout_token(sid="s1")
        replies = await asyncio.gather(*(logout(linked, token) for _ in range(20)))
    else:
        session = {"format": "opaque", "id": "s1"}
        token = idp.set_token("session-revoked", {"format": "complex", "session": session})
        replies = await asyncio.gather(*(push(linked, token) for _ in range(20)))
    statuses = sorted(reply.status_code for reply in replies)
    assert statuses.count(200 if receiver == "backchannel" else 202) == 1, statuses
    for reply in replies:
        if reply.status_code == 503:
            assert (reply.json()["error"], reply.headers["Retry-After"]) == (
                "token_in_progress",
                "1",
            )
        else:
            assert reply.status_code in (200, 202, 400), reply.text
    assert await _stream_length(linked, uid) == before + 4  # the four sessions, once each
    again = await (logout(linked, token) if receiver == "backchannel" else push(linked, token))
    assert again.status_code == 400  # done: a replay from now on


@pytest.mark.slow  # two Redis servers, a frozen replica
async def test_a_logout_that_was_not_durable_is_served_again(
    pair: Pair,  # noqa: F811 (the fixture)
    idp: IdP,
) -> None:
    """The jti is claimed before acting, and given back when acting fails: the IdP's retry
    after a 503 not_durable acts again (while the replica is frozen, 503 again; once it is
    back, 200), instead of being refused as a replay."""
    configured = pair.settings.with_overrides(
        upstream_issuer=IDP, upstream_audience=AUDIENCE, upstream_key=idp.public_pem()
    )
    app = create_app(configured)
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as http:
        issuer = Issuer(url, http, configured, app)
        await issuer.add_user("alice")
        await login_linked(issuer, idp, "upstream-alice", "s1")
        token = idp.logout_token(sid="s1")
        pair.replica.pause()
        try:
            for _ in range(2):
                reply = await logout(issuer, token)
                assert (reply.status_code, reply.json()["error"]) == (503, "not_durable")
        finally:
            pair.replica.resume()
        assert (await repeated(partial(logout, issuer, token))).status_code == 200
        assert (await logout(issuer, token)).status_code == 400  # acted on: a replay now


async def test_an_old_set_is_refused(linked: Issuer, idp: IdP) -> None:
    user = {"format": "iss_sub", "iss": IDP, "sub": "upstream-alice"}
    old = idp.sign({"iat": int(time.time()) - 2 * 86_400, "sub_id": user,
                    "events": {CAEP + "credential-change": {}}}, "secevent+jwt")  # fmt: skip
    reply = await push(linked, old)
    assert reply.status_code == 400
    assert "older" in reply.json()["description"]


async def test_an_unreachable_jwks_answers_503_so_the_idp_retries(
    settings: Settings, idp: IdP
) -> None:
    configured = settings.with_overrides(
        upstream_issuer=IDP, upstream_audience=AUDIENCE,
        upstream_jwks_url="http://127.0.0.1:9/jwks",  # discard port: nothing answers
    )  # fmt: skip
    app = create_app(configured)
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as http:
        issuer = Issuer(url, http, configured, app)
        reply = await logout(issuer, idp.logout_token(sid="s1"))
    assert reply.status_code == 503
    assert reply.headers["Retry-After"]


async def push(issuer: Issuer, token: str) -> httpx.Response:
    return await issuer.http.post("/v1/signals/events", content=token,
                                  headers={"Content-Type": "application/secevent+jwt"})  # fmt: skip


async def test_caep_session_revoked_and_credential_change(
    linked: Issuer, idp: IdP, make_verifier: VerifierFactory
) -> None:
    await linked.add_user("alice")
    verifier = await make_verifier()
    first = await login_linked(linked, idp, "upstream-alice", "idp-s1")
    second = await login_linked(linked, idp, "upstream-alice", "idp-s2")
    session = {"format": "complex", "session": {"format": "opaque", "id": "idp-s1"},
               "user": {"format": "iss_sub", "iss": IDP, "sub": "upstream-alice"}}  # fmt: skip
    reply = await push(linked, idp.set_token("session-revoked", session))
    assert reply.status_code == 202, reply.text
    await eventually(partial(is_rejected, verifier, first["access_token"]))
    assert outcome(verifier, second["access_token"]) == "accepted"

    user = {"format": "iss_sub", "iss": IDP, "sub": "upstream-alice"}
    assert (await push(linked, idp.set_token("credential-change", user))).status_code == 202
    await eventually(partial(is_rejected, verifier, second["access_token"]))


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("garbage", "application/secevent+jwt"),
        ("SET", "application/json"),
        ("unknown event", "application/secevent+jwt"),
        ("foreign subject", "application/secevent+jwt"),
    ],
)
async def test_bad_sets_get_rfc_8935_errors(
    linked: Issuer, idp: IdP, body: str, content_type: str
) -> None:
    user = {"format": "iss_sub", "iss": IDP, "sub": "upstream-alice"}
    token = {
        "garbage": "garbage",
        "SET": idp.set_token("session-revoked", user),
        "unknown event": idp.set_token("assurance-level-change", user),
        "foreign subject": idp.set_token("session-revoked", user | {"iss": "https://evil"}),
    }[body]
    reply = await linked.http.post("/v1/signals/events", content=token,
                                   headers={"Content-Type": content_type})  # fmt: skip
    assert reply.status_code == (415 if content_type == "application/json" else 400)
    assert set(reply.json()) == {"err", "description"}
    assert reply.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    ("change", "err"),
    [
        ({"iss": "https://another-idp.example"}, "invalid_issuer"),
        ({"aud": "another-rp"}, "invalid_audience"),
        ({"signed_by": "stranger"}, "invalid_key"),
        ({"alg": "HS256"}, "invalid_key"),
        ({"exp": 1}, "invalid_request"),
    ],
    ids=["issuer", "audience", "signature", "hmac", "expired"],
)
async def test_a_refused_set_says_why_in_rfc_8935_terms(
    linked: Issuer, idp: IdP, change: dict[str, Any], err: str
) -> None:
    """Issue 19 point 15. Before: every refusal of a SET's token said invalid_key, a wrong
    issuer or audience included."""
    user = {"format": "iss_sub", "iss": IDP, "sub": "upstream-alice"}
    claims = {"sub_id": user, "events": {CAEP + "credential-change": {}}}
    signer, alg = change.pop("signed_by", None), change.pop("alg", None)
    if alg is not None:  # the IdP's public key as an HMAC secret
        head = b64({"alg": alg, "kid": idp.kid, "typ": "secevent+jwt"})
        body = b64(claims | {"iss": IDP, "aud": AUDIENCE, "iat": int(time.time())})
        mac = hmac.new(idp.public_pem().encode(), f"{head}.{body}".encode(), hashlib.sha256)
        token = f"{head}.{body}.{b64(mac.digest())}"
    else:
        sender = idp if signer is None else IdP(rsa.generate_private_key(65537, 2048))
        token = sender.sign(claims | change, "secevent+jwt")
    reply = await push(linked, token)
    assert (reply.status_code, reply.json()["err"]) == (400, err), reply.text
    assert reply.headers["Cache-Control"] == "no-store"


async def test_a_refused_logout_token_is_never_stored(linked: Issuer, idp: IdP) -> None:
    """OIDC Back-Channel Logout 1.0 section 2.8: the RP's answer carries Cache-Control:
    no-store, its 400 too. Before: only the 200 did."""
    for token in ("garbage", idp.logout_token(sid="s1", aud="another-rp")):
        reply = await logout(linked, token)
        assert (reply.status_code, reply.json()["error"]) == (400, "invalid_token")
        assert reply.headers["Cache-Control"] == "no-store"
    too_large = await push(linked, "x" * (linked.settings.http.max_body_bytes + 1))
    assert (too_large.status_code, too_large.json()["err"]) == (413, "invalid_request")
    assert too_large.headers["Cache-Control"] == "no-store"
    wrong_type = await linked.http.post(
        "/v1/signals/backchannel-logout", content=b'{"logout_token": "x"}',
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    assert (wrong_type.status_code, wrong_type.headers["Cache-Control"]) == (415, "no-store")


async def test_keys_from_the_idps_jwks_url(settings: Settings, idp: IdP) -> None:
    async def jwks(_: object) -> JSONResponse:
        return JSONResponse(idp.jwks())

    async with serve(Starlette(routes=[Route("/jwks", jwks)])) as idp_url:
        configured = settings.with_overrides(
            upstream_issuer=IDP, upstream_audience=AUDIENCE, upstream_jwks_url=f"{idp_url}/jwks"
        )
        app = create_app(configured)
        async with serve(app) as url, httpx.AsyncClient(base_url=url) as http:
            issuer = Issuer(url, http, configured, app)
            await issuer.add_user("alice")
            await login_linked(issuer, idp, "upstream-alice", "s1")
            assert (await logout(issuer, idp.logout_token(sid="s1"))).status_code == 200


async def test_without_an_upstream_idp_the_receivers_are_not_found(issuer: Issuer) -> None:
    reply = await issuer.http.post("/v1/signals/backchannel-logout", data={"logout_token": "x"})
    assert reply.status_code == 404
    body = {"username": "u", "password": "p", "upstream_id_token": "x"}
    assert (await issuer.http.post("/v1/login", json=body)).status_code == 400
