"""Every algorithm against every key type the IdP could publish (issue 19, point 5).

Before: a logout token, a CAEP SET or an ``upstream_id_token`` whose ``alg`` did not fit the
IdP's key (ES256 or EdDSA naming an RSA key) made PyJWT raise ``InvalidKeyError`` (or
``TypeError``) and the issuer answered 500. Back-Channel Logout 1.0 §2.8 asks for 400. Now
each algorithm is bound to its key type before any signature check: each receiver answers
400 in its own error shape, never cached, unless the token is signed with the IdP's key of
the type its algorithm needs.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from revocast.issuer import create_app
from revocast.issuer.upstream import KEY_KINDS
from revocast.settings import Settings
from tests.conftest import PASSWORD, Issuer
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
from tests.test_upstream_revocations import upstream_nonce

ASYMMETRIC = list(KEY_KINDS)  # every algorithm revocast can verify, all accepted here


@dataclass
class Receivers:
    issuer: Issuer
    chain: KeyChain

    async def send(self, receiver: str, alg: str, kid: str) -> httpx.Response:
        """A token for ``receiver`` naming ``alg`` and ``kid``, signed as KeyChain.sign does."""
        now = int(time.time())
        base = {"iss": IDP, "aud": AUDIENCE, "iat": now, "exp": now + 60,
                "jti": f"{receiver}-{alg}-{kid}-{now}"}  # fmt: skip
        http = self.issuer.http
        if receiver == "backchannel":
            claims = base | {"sid": "nothing-linked", "events": {BACKCHANNEL: {}}}
            token = self.chain.sign(claims, alg, kid, "logout+jwt")
            return await http.post("/v1/signals/backchannel-logout", data={"logout_token": token})
        if receiver == "caep":
            subject = {"format": "complex",
                       "session": {"format": "opaque", "id": "nothing-linked"}}  # fmt: skip
            claims = base | {"sub_id": subject, "events": {CAEP + "session-revoked": {}}}
            token = self.chain.sign(claims, alg, kid, "secevent+jwt")
            headers = {"Content-Type": "application/secevent+jwt"}
            return await http.post("/v1/signals/events", content=token, headers=headers)
        secret, nonce = await upstream_nonce(self.issuer)
        token = self.chain.sign(base | {"sub": "matrix", "nonce": nonce}, alg, kid, "JWT")
        body = {"username": "alice", "password": PASSWORD, "upstream_id_token": token,
                "upstream_nonce": secret}  # fmt: skip
        return await http.post("/v1/login", json=body)


@pytest.fixture(scope="module")
def chain() -> KeyChain:
    return KeyChain.new()


@contextlib.asynccontextmanager
async def jwks_issuer(
    settings: Settings, chain: KeyChain, algorithms: list[str]
) -> AsyncIterator[Receivers]:
    """An issuer reading the IdP's JWKS (one key of every type, by kid), accepting
    ``algorithms``."""

    async def jwks(_: object) -> JSONResponse:
        return JSONResponse(chain.jwks())

    async with serve(Starlette(routes=[Route("/jwks", jwks)])) as idp_url:
        configured = settings.with_overrides(
            upstream_issuer=IDP, upstream_audience=AUDIENCE,
            upstream_jwks_url=f"{idp_url}/jwks", upstream_algorithms=tuple(algorithms),
        )  # fmt: skip
        app = create_app(configured)
        async with serve(app) as url, httpx.AsyncClient(base_url=url) as http:
            issuer = Issuer(url, http, configured, app)
            await issuer.add_user("alice")
            yield Receivers(issuer, chain)


@pytest.fixture
async def published(settings: Settings, chain: KeyChain) -> AsyncIterator[Receivers]:
    async with jwks_issuer(settings, chain, ASYMMETRIC) as receivers:
        yield receivers


SUCCESS = {"backchannel": 200, "caep": 202, "login": 200}
SHAPES = {"backchannel": {"error", "error_description"}, "caep": {"err", "description"},
          "login": {"error", "detail"}}  # fmt: skip


def check(receiver: str, reply: httpx.Response, accepted: bool, case: str) -> None:
    if accepted:
        assert reply.status_code == SUCCESS[receiver], (case, reply.text)
        return
    assert reply.status_code == 400, (case, reply.status_code, reply.text)
    assert set(reply.json()) == SHAPES[receiver], (case, reply.text)
    if receiver != "login":
        assert reply.headers["Cache-Control"] == "no-store", case


@pytest.mark.parametrize("receiver", ["backchannel", "caep", "login"])
async def test_every_algorithm_against_every_published_key(
    published: Receivers, receiver: str
) -> None:
    """14 algorithms by 6 key types (RSA, EC P-256, P-384, P-521, Ed25519, oct), by kid."""
    for alg in ALGORITHMS:
        for kid in KEY_TYPES:
            reply = await published.send(receiver, alg, kid)
            fits = alg in KEY_KINDS and kind_for(alg) == kid
            check(receiver, reply, fits, f"{receiver} {alg} against the {kid} key")


@pytest.mark.parametrize("kind", ["rsa", "p256", "p384", "p521", "ed25519"])
async def test_every_algorithm_against_a_static_key(
    settings: Settings, chain: KeyChain, kind: str
) -> None:
    """The IdP's key given as one PEM (REVOCAST_UPSTREAM_KEY): the kid is not looked at, so
    every token meets that key, whatever it names."""
    configured = settings.with_overrides(
        upstream_issuer=IDP, upstream_audience=AUDIENCE,
        upstream_key=public_pem(chain.keys[kind]), upstream_algorithms=tuple(ASYMMETRIC),
    )  # fmt: skip
    app = create_app(configured)
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as http:
        issuer = Issuer(url, http, configured, app)
        await issuer.add_user("alice")
        receivers = Receivers(issuer, chain)
        for receiver in ("backchannel", "caep", "login"):
            for alg in ALGORITHMS:
                # Named after the key's own type when the alg fits it (signed with the key),
                # else after the alg's own type (signed with an attacker's key of that type).
                fits = alg in KEY_KINDS and kind_for(alg) == kind
                kid = kind if fits or alg == "none" else kind_for(alg)
                reply = await receivers.send(receiver, alg, kid)
                check(receiver, reply, fits, f"{receiver} {alg} against a static {kind} key")


async def test_the_default_algorithms_refuse_the_others(
    settings: Settings, chain: KeyChain
) -> None:
    """With the default REVOCAST_UPSTREAM_ALGORITHMS (RS256, ES256, EdDSA), a fitting key
    and a good signature are not enough for another algorithm."""
    default = list(Settings().upstream.upstream_algorithms)
    async with jwks_issuer(settings, chain, default) as receivers:
        for alg in ("RS256", "PS256", "ES256", "ES384", "ES512", "EdDSA"):
            reply = await receivers.send("backchannel", alg, kind_for(alg))
            check("backchannel", reply, alg in default, f"default list, {alg}")
