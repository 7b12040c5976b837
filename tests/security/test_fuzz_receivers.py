"""Property tests (hypothesis) of the receivers of the upstream IdP's signals: the
back-channel logout endpoint, the CAEP SET endpoint, and a login with an ID token.

The IdP publishes one key of every type (RSA, EC P-256, P-384, P-521, Ed25519, oct) and
every algorithm revocast can verify is accepted, so that only the binding of each
algorithm to its key type, the signature and the claims stand between a token and an
action. Tokens are drawn with any ``alg`` (HS*, RS*, PS*, ES*, EdDSA, none, junk) naming any
kid, signed with the IdP's key of that kid, an attacker's key of the algorithm's type, the
kid's public text as an HMAC secret, or nothing, over claims that are right for the
receiver until some are replaced, removed or given odd values; some are then mutated.
Budgets and reproducibility as in ``test_fuzz.py`` (the same ``budget``).

Bugs this found: none beyond issue 19 point 5 itself (150 of the 252 pairs of algorithm
and published key were a 500 before, one of ``InvalidKeyError`` or ``TypeError``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt as pyjwt
import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from revocast.issuer import create_app
from revocast.issuer.upstream import KEY_KINDS
from revocast.settings import Settings
from tests.conftest import PASSWORD, Issuer
from tests.security.test_fuzz import (
    FORM,
    JSON,
    OTHER_MEDIA_TYPES,
    TOKEN_CHARS,
    Mutation,
    bodies,
    budget,
    json_values,
    mutate,
    mutations,
)
from tests.support.idp import (
    ALGORITHMS,
    AUDIENCE,
    BACKCHANNEL,
    CAEP,
    IDP,
    KEY_TYPES,
    KeyChain,
    kind_for,
    public_pem,
)
from tests.support.servers import serve
from tests.test_errors import dump

CHAIN = KeyChain.new()
SET = "application/secevent+jwt"
RECEIVERS = {
    "backchannel": ("/v1/signals/backchannel-logout", {"error", "error_description"}, 200),
    "caep": ("/v1/signals/events", {"err", "description"}, 202),
    "login": ("/v1/login", {"error", "detail"}, 200),
}
# 503s a receiver may answer to a well-formed request: a kid the JWKS lacks (fetched again
# at most every 10 s), a copy of a token another request is acting on.
RETRY_LATER = {"upstream_keys_unavailable", "token_in_progress"}


@dataclass
class Stage:
    issuer: Issuer
    redis: Redis

    async def nonce(self) -> tuple[str, str]:
        reply = await self.issuer.http.post("/v1/login/upstream-nonce")
        assert reply.status_code == 200, reply.text
        return reply.json()["upstream_nonce"], reply.json()["nonce"]


@pytest.fixture
async def stage(settings: Settings, redis: Redis) -> AsyncIterator[Stage]:
    """An issuer reading the IdP's JWKS, accepting every asymmetric algorithm, with login
    throttling off (the fuzz fails logins by the hundred) and a user, alice."""

    async def jwks(_: object) -> JSONResponse:
        return JSONResponse(CHAIN.jwks())

    async with serve(Starlette(routes=[Route("/jwks", jwks)])) as idp_url:
        configured = settings.with_overrides(
            upstream_issuer=IDP, upstream_audience=AUDIENCE, upstream_jwks_url=f"{idp_url}/jwks",
            upstream_algorithms=tuple(KEY_KINDS), login_max_attempts_per_client=0,
            login_max_failures_per_user=0,
        )  # fmt: skip
        app = create_app(configured)
        async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
            issuer = Issuer(url, http, configured, app)
            await issuer.add_user("alice")
            stage = Stage(issuer, redis)
            await stage.nonce()  # the deployment's nonce key exists from now on
            yield stage


# ---------------------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------------------

odd_values = st.one_of(
    json_values(),
    st.floats(),  # NaN and infinities: Python's json writes them, and reads them back
    st.integers(min_value=-(10**30), max_value=10**400),
    st.sampled_from([True, "123", "", [IDP], {"format": "iss_sub"}]),
)
CLAIMS = ["iss", "aud", "iat", "exp", "nbf", "jti", "sub", "sid", "events", "nonce", "sub_id"]
HEADER_EXTRAS = {"typ": st.sampled_from(["JWT", "logout+jwt", "secevent+jwt", "at+jwt", "",
                                         "application/logout+jwt"]) | json_values(),
                 "crit": st.just(["exp"]), "jku": st.just("https://evil.example/jwks"),
                 "jwk": st.just({"kty": "oct", "k": "AAAA"}), "b64": st.just(False),
                 "x5u": st.just("https://evil.example/x5u")}  # fmt: skip


@dataclass(frozen=True)
class Draw:
    receiver: str
    alg: Any  # what the header says
    kid: Any
    signer: str  # "own", "attacker", "hmac", "none" or "junk"
    extras: dict[str, Any]
    changes: dict[str, Any]  # claims replaced (or added)
    removed: frozenset[str]
    edits: tuple[Mutation, ...]
    junk: bytes


def _draws(
    alg: st.SearchStrategy[Any], kid: st.SearchStrategy[Any], signer: st.SearchStrategy[str]
) -> st.SearchStrategy[Draw]:
    return st.builds(
        Draw,
        receiver=st.sampled_from(list(RECEIVERS)),
        alg=alg,
        kid=kid,
        signer=signer,
        extras=st.just({}) | st.fixed_dictionaries({}, optional=HEADER_EXTRAS),
        changes=st.just({}) | st.dictionaries(st.sampled_from(CLAIMS) | st.text(max_size=6),
                                              odd_values, max_size=3),
        removed=st.just(frozenset()) | st.frozensets(st.sampled_from(CLAIMS), max_size=2),
        edits=st.just(()) | mutations(TOKEN_CHARS),
        junk=st.binary(max_size=80),
    )  # fmt: skip


# Half the draws are the IdP's own tokens (its key for the kid, an algorithm that fits),
# then maybe altered: so that the checks after the signature are reached, and some tokens
# are acted on. The other half name anything and are signed by anyone.
draws = st.sampled_from(list(KEY_KINDS)).flatmap(
    lambda alg: _draws(st.just(alg), st.just(kind_for(alg)), st.just("own"))
) | _draws(
    st.sampled_from(ALGORITHMS) | st.sampled_from(["ES521", "Ed25519", "RSA", "hs256"])
    | json_values(3),
    st.sampled_from([*KEY_TYPES, "unknown"]) | json_values(3),
    st.sampled_from(["own", "attacker", "hmac", "none", "junk"]),
)  # fmt: skip


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _claims(draw: Draw, nonce: str) -> dict[str, Any]:
    """The receiver's right claims, then the draw's replacements and removals."""
    now = int(time.time())
    jti = _b64(hashlib.sha256(repr(draw).encode()).digest())
    claims: dict[str, Any] = {"iss": IDP, "aud": AUDIENCE, "iat": now, "exp": now + 60,
                              "jti": jti}  # fmt: skip
    if draw.receiver == "backchannel":
        claims |= {"sid": "fuzz-sid", "events": {BACKCHANNEL: {}}}
    elif draw.receiver == "caep":
        user = {"format": "iss_sub", "iss": IDP, "sub": "fuzz-sub"}
        claims |= {"sub_id": user, "events": {CAEP + "credential-change": {}}}
    else:
        claims |= {"sub": "fuzz-sub", "nonce": nonce}
    claims |= draw.changes
    return {name: value for name, value in claims.items() if name not in draw.removed}


def forge(draw: Draw, claims: dict[str, Any]) -> tuple[str, bool]:
    """The token, and whether the IdP itself signed it with a key its alg fits (the only
    tokens that may ever be acted on)."""
    header = {"kid": draw.kid, **draw.extras, "alg": draw.alg}
    signing = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    alg, kid = draw.alg, draw.kid
    genuine = False
    alg = alg if isinstance(alg, str) else ""  # a list or an object names no algorithm
    kid = kid if isinstance(kid, str) else ""
    if draw.signer == "hmac" and kid in CHAIN.keys:
        secret = CHAIN.keys[kid] if kid == "oct" else public_pem(CHAIN.keys[kid]).encode()
        signature = hmac.new(secret, signing.encode(), hashlib.sha256).digest()
    elif draw.signer in ("own", "attacker") and alg in KEY_KINDS:
        own = draw.signer == "own" and kid == kind_for(alg)
        key = CHAIN.keys[kid] if own else CHAIN.attacker[kind_for(alg)]
        algorithm = pyjwt.algorithms.get_default_algorithms()[alg]
        signature = algorithm.sign(signing.encode(), key)
        genuine = own
    elif draw.signer == "none":
        signature = b""
    else:
        signature = draw.junk
    token = f"{signing}.{_b64(signature)}"
    edited = mutate(token, draw.edits)
    return edited, genuine and edited == token


async def send(stage: Stage, draw: Draw) -> tuple[httpx.Response, bool]:
    secret, nonce = await stage.nonce() if draw.receiver == "login" else ("", "")
    token, genuine = forge(draw, _claims(draw, nonce))
    http = stage.issuer.http
    if draw.receiver == "backchannel":
        reply = await http.post(RECEIVERS["backchannel"][0], data={"logout_token": token})
    elif draw.receiver == "caep":
        reply = await http.post(RECEIVERS["caep"][0], content=token.encode("utf-8", "replace"),
                                headers={"Content-Type": SET})  # fmt: skip
    else:
        body = {"username": "alice", "password": PASSWORD, "upstream_id_token": token,
                "upstream_nonce": secret}  # fmt: skip
        reply = await http.post("/v1/login", json=body)
    return reply, genuine


def check_reply(receiver: str, reply: httpx.Response) -> None:
    """Below 500 but for the retry-later 503s; every error in the receiver's own shape, and
    the receivers' never cached."""
    _, shape, _ = RECEIVERS[receiver]
    if reply.status_code >= 500:
        assert reply.status_code == 503, reply.text
        assert reply.json()["error"] in RETRY_LATER, reply.text
        assert reply.headers["Retry-After"]
        return
    if reply.status_code >= 400:
        assert set(reply.json()) == shape, (receiver, reply.text)
        if receiver != "login":
            assert reply.headers["Cache-Control"] == "no-store", reply.headers


# ---------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------


@budget(150)
@given(draw=draws)
async def test_receivers_act_only_on_the_idps_own_tokens(stage: Stage, draw: Draw) -> None:
    """Never a 500; only a token the IdP signed with a key of the type its algorithm needs,
    unaltered, is acted on; a refused token (any status >= 400) changes nothing in Redis."""
    before = await dump(stage.redis, stage.issuer.settings.redis.key_prefix)
    reply, genuine = await send(stage, draw)
    event(f"{draw.receiver} -> {reply.status_code} {reply.text[:50]}")
    check_reply(draw.receiver, reply)
    if reply.status_code < 300:
        assert genuine, (draw, reply.text)
    else:
        after = await dump(stage.redis, stage.issuer.settings.redis.key_prefix)
        assert after == before, draw


@dataclass(frozen=True)
class RawCall:
    receiver: str
    content_type: str | None
    body: bytes


raw_calls = st.builds(
    RawCall,
    receiver=st.sampled_from(["backchannel", "caep"]),
    content_type=st.sampled_from([FORM, SET, f"{SET}; charset=utf-8", *OTHER_MEDIA_TYPES])
    | st.none(),
    body=bodies | st.builds(lambda pairs: "&".join(pairs).encode(),
                            st.lists(st.sampled_from(["logout_token=", "logout_token=a.b.c",
                                                      "logout_token=%ff", "x=1", "=", "&"]),
                                     max_size=4)),
)  # fmt: skip


@budget(100)
@given(call=raw_calls)
async def test_receivers_take_any_body(stage: Stage, call: RawCall) -> None:
    """Random bodies (JSON, forms, bytes, huge, deeply nested, invalid UTF-8) under random
    media types to both receivers: below 500, the receiver's error shape, never cached."""
    path, _, _ = RECEIVERS[call.receiver]
    headers = {} if call.content_type is None else {"Content-Type": call.content_type}
    reply = await stage.issuer.http.post(path, content=call.body, headers=headers)
    event(f"{call.receiver} -> {reply.status_code}")
    check_reply(call.receiver, reply)
    assert reply.status_code >= 400  # nothing here is a token the IdP signed


@budget(40)
@given(secret=st.text(max_size=130) | st.text("ABCDEFabcdef0123456789-_", min_size=75,
                                              max_size=75), body=st.booleans())  # fmt: skip
async def test_a_login_with_any_upstream_nonce(stage: Stage, secret: str, body: bool) -> None:
    """A real ID token for a real nonce, with any other upstream_nonce: refused, 400, nothing
    written. (And the nonce endpoint answers whatever body comes with its POST.)"""
    _, nonce = await stage.nonce()
    now = int(time.time())
    id_token = pyjwt.encode({"iss": IDP, "aud": AUDIENCE, "iat": now, "exp": now + 60,
                             "sub": "fuzz-sub", "nonce": nonce}, CHAIN.keys["rsa"],
                            algorithm="RS256", headers={"kid": "rsa"})  # fmt: skip
    before = await dump(stage.redis, stage.issuer.settings.redis.key_prefix)
    reply = await stage.issuer.http.post("/v1/login", json={
        "username": "alice", "password": PASSWORD, "upstream_id_token": id_token,
        "upstream_nonce": secret})  # fmt: skip
    check_reply("login", reply)
    assert reply.status_code == 400, reply.text
    assert await dump(stage.redis, stage.issuer.settings.redis.key_prefix) == before
    issued = await stage.issuer.http.post("/v1/login/upstream-nonce",
                                          content=secret.encode() if body else b"",
                                          headers={"Content-Type": JSON})  # fmt: skip
    assert issued.status_code == 200
