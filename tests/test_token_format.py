"""What the issuer writes: whole-second times every JWT library accepts at once, the
private iat_ms, RFC 9068's typ, and the alg name the settings pick."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import jwt

from revocast.issuer import create_app
from revocast.keys import PublicKey
from tests.conftest import PASSWORD, Issuer
from tests.support.servers import serve


def parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header, payload, _ = token.split(".")

    def decode(text: str) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        return value

    return decode(header), decode(payload)


async def test_times_are_whole_seconds_and_verify_at_once(issuer: Issuer) -> None:
    uid = await issuer.add_user("alice")
    jwks = (await issuer.http.get("/.well-known/jwks.json")).json()
    [jwk] = jwks["keys"]
    public = PublicKey.from_jwk(json.dumps(jwk)).key
    for _ in range(10):
        token = (await issuer.login("alice"))["access_token"]
        header, claims = parts(token)
        assert header == {"alg": "EdDSA", "kid": jwk["kid"], "typ": "at+jwt"}
        assert all(type(claims[name]) is int for name in ("iat", "nbf", "exp", "iat_ms"))
        assert claims["iat"] == claims["nbf"] == claims["iat_ms"] // 1000
        # No leeway: a library comparing whole seconds accepts it straight after login.
        tokens = issuer.settings.tokens
        decoded = jwt.decode(token, public, algorithms=["EdDSA"], audience=tokens.audience,
                             issuer=tokens.issuer, leeway=0)  # fmt: skip
        assert decoded["sub"] == uid


async def test_the_issuer_writes_the_alg_name_it_is_told(issuer: Issuer) -> None:
    await issuer.add_user("alice")
    settings = issuer.settings.with_overrides(jws_alg="Ed25519")
    async with serve(create_app(settings)) as url, httpx.AsyncClient(base_url=url) as http:
        login = await http.post("/v1/login", json={"username": "alice", "password": PASSWORD})
        token = login.json()["access_token"]
        assert parts(token)[0]["alg"] == "Ed25519"
        sessions = await http.get("/v1/sessions", headers={"Authorization": f"Bearer {token}"})
        assert sessions.status_code == 200  # the issuer's own verifier accepts the new name
