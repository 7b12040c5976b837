"""revocast's tokens in JOSE libraries nobody here wrote, each with its default options and
the JWKS from /.well-known/jwks.json: accepted straight after login (whole-second times),
refused once a revoked key has left the JWKS they fetch again."""

from __future__ import annotations

import asyncio
import json
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import jwt as pyjwt
import pytest
from joserfc import jwt as joserfc_jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import KeySet
from jwcrypto import jwk as jwcrypto_jwk  # type: ignore[import-untyped]
from jwcrypto import jwt as jwcrypto_jwt

from revocast.issuer import operator
from revocast.issuer.metadata import document as metadata_document
from tests.conftest import PASSWORD, Issuer

with warnings.catch_warnings():
    # Authlib 1.9 deprecates its httpx client (for httpx2) and authlib.jose (for joserfc),
    # and turns such warnings on as it loads; its users still call both, so the tests do.
    import authlib.deprecate  # type: ignore[import-untyped]

    warnings.simplefilter("ignore", authlib.deprecate.AuthlibDeprecationWarning)
    from authlib.integrations.httpx_client import AsyncOAuth2Client  # type: ignore[import-untyped]
    from authlib.jose import JsonWebKey, JsonWebToken  # type: ignore[import-untyped]
    from authlib.oauth2.rfc8414 import AuthorizationServerMetadata  # type: ignore[import-untyped]

Check = Callable[[str, dict[str, Any], str, str], str]  # token, jwks, iss, aud -> sub


def with_pyjwt(token: str, jwks: dict[str, Any], iss: str, aud: str) -> str:
    kid = pyjwt.get_unverified_header(token)["kid"]
    key = pyjwt.PyJWKSet.from_dict(jwks)[kid]
    return str(pyjwt.decode(token, key, algorithms=["EdDSA"], audience=aud, issuer=iss)["sub"])


def with_jwcrypto(token: str, jwks: dict[str, Any], iss: str, aud: str) -> str:
    keys = jwcrypto_jwk.JWKSet.from_json(json.dumps(jwks))
    checked = jwcrypto_jwt.JWT(jwt=token, key=keys, check_claims={"iss": iss, "aud": aud})
    return str(json.loads(checked.claims)["sub"])


def with_joserfc(token: str, jwks: dict[str, Any], iss: str, aud: str) -> str:
    alg = pyjwt.get_unverified_header(token)["alg"]
    with warnings.catch_warnings():
        # joserfc accepts the name EdDSA but warns that RFC 9864 deprecates it;
        # REVOCAST_JWS_ALG=Ed25519 writes the new name.
        warnings.simplefilter("ignore", SecurityWarning)
        keys = KeySet.import_key_set(cast(Any, jwks))
        decoded = joserfc_jwt.decode(token, keys, algorithms=[alg])
    rules = joserfc_jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": iss}, aud={"essential": True, "value": aud}
    )
    rules.validate(decoded.claims)
    return str(decoded.claims["sub"])


def with_authlib(token: str, jwks: dict[str, Any], iss: str, aud: str) -> str:
    claims = JsonWebToken(["EdDSA"]).decode(
        token,
        JsonWebKey.import_key_set(jwks),
        claims_options={"iss": {"essential": True, "value": iss},
                        "aud": {"essential": True, "value": aud}},
    )  # fmt: skip
    claims.validate()
    return str(claims["sub"])


LIBRARIES: dict[str, Check] = {
    "pyjwt": with_pyjwt,
    "jwcrypto": with_jwcrypto,
    "joserfc": with_joserfc,
    "authlib": with_authlib,
}


@pytest.fixture(params=list(LIBRARIES))
def check(request: pytest.FixtureRequest) -> Check:
    return LIBRARIES[request.param]


async def test_fresh_tokens_verify_at_once(issuer: Issuer, check: Check) -> None:
    uid = await issuer.add_user("alice")
    settings = issuer.settings
    jwks = (await issuer.http.get("/.well-known/jwks.json")).json()
    for _ in range(10):
        token = (await issuer.login("alice"))["access_token"]
        assert check(token, jwks, settings.tokens.issuer, settings.tokens.audience) == uid


async def token_of_a_revoked_key(issuer: Issuer) -> tuple[str, str]:
    """A fresh token, then its key revoked: (the token, the JWKS as served after that)."""
    await issuer.add_user("alice")
    token = (await issuer.login("alice"))["access_token"]
    kid = pyjwt.get_unverified_header(token)["kid"]
    await operator.revoke_key(issuer.ctx.store, issuer.settings, kid, "leaked")
    jwks = (await issuer.http.get("/.well-known/jwks.json")).text
    assert kid not in {key["kid"] for key in json.loads(jwks)["keys"]}
    return token, jwks


async def test_a_revoked_key_is_refused_once_the_jwks_is_fetched_again(
    issuer: Issuer, check: Check
) -> None:
    settings = issuer.settings
    token, served = await token_of_a_revoked_key(issuer)
    jwks = json.loads(served)
    with pytest.raises(Exception):  # noqa: B017, PT011 (each library has its own error)
        check(token, jwks, settings.tokens.issuer, settings.tokens.audience)


NODE_DIR = Path(__file__).resolve().parent / "support" / "node"  # package.json, verify.mjs


def node_jose() -> tuple[str, Path]:
    """node and the folder holding jose (./scripts/test-deps installs it), or a skip saying why."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node's jose: node is not on this machine")
    if not (NODE_DIR / "node_modules" / "jose").is_dir():
        pytest.skip("Node's jose: not installed (./scripts/test-deps runs npm ci when npm works)")
    return node, NODE_DIR


class NodeJose:
    """Node's jose jwtVerify in a child process: one token per line in, one verdict out."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, jwks: str, issuer: str, audience: str) -> NodeJose:
        node, folder = node_jose()
        process = await asyncio.create_subprocess_exec(
            node, str(folder / "verify.mjs"), jwks, issuer, audience,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        return cls(process)

    async def check(self, token: str) -> str:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(token.encode() + b"\n")
        await self.process.stdin.drain()
        return (await asyncio.wait_for(self.process.stdout.readline(), 10)).decode().strip()

    async def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        await asyncio.wait_for(self.process.wait(), 10)


async def test_node_jose_accepts_tokens_straight_after_login(issuer: Issuer) -> None:
    uid = await issuer.add_user("alice")
    settings = issuer.settings
    jwks = (await issuer.http.get("/.well-known/jwks.json")).text
    checker = await NodeJose.start(jwks, settings.tokens.issuer, settings.tokens.audience)
    try:
        for _ in range(10):
            token = (await issuer.login("alice"))["access_token"]
            assert await checker.check(token) == f"ok {uid}"
    finally:
        await checker.close()


async def test_node_jose_refuses_a_revoked_key_once_the_jwks_is_fetched_again(
    issuer: Issuer,
) -> None:
    settings = issuer.settings
    token, jwks = await token_of_a_revoked_key(issuer)
    checker = await NodeJose.start(jwks, settings.tokens.issuer, settings.tokens.audience)
    try:
        assert await checker.check(token) == "refused ERR_JWKS_NO_MATCHING_KEY"
    finally:
        await checker.close()


# Authlib's OAuth client against the RFC 6749, 7009 and 7662 endpoints ------------------------


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
async def test_authlib_client_gets_introspects_and_revokes_tokens(
    issuer: Issuer, method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")  # loopback http in the test only
    uid = await issuer.add_user("alice", ["user"])
    server = await issuer.add_client("backend", confidential=True)
    meta = (await issuer.http.get("/.well-known/oauth-authorization-server")).json()
    assert method in meta["token_endpoint_auth_methods_supported"]
    async with AsyncOAuth2Client(
        server["client_id"], server["client_secret"], token_endpoint_auth_method=method,
        revocation_endpoint_auth_method=method,
    ) as client:  # fmt: skip
        token = await client.fetch_token(
            meta["token_endpoint"], grant_type="password", username="alice", password=PASSWORD
        )
        assert (token["token_type"], token["scope"]) == ("Bearer", "user")
        seen = (await client.introspect_token(
            meta["introspection_endpoint"], token=token["access_token"]
        )).json()  # fmt: skip
        assert (seen["active"], seen["client_id"], seen["sub"]) == (True, server["client_id"], uid)
        assert all(type(seen[name]) is int for name in ("exp", "iat", "nbf"))

        refreshed = await client.refresh_token(meta["token_endpoint"])
        assert refreshed["access_token"] != token["access_token"]
        revoked = await client.revoke_token(
            meta["revocation_endpoint"], token=refreshed["refresh_token"],
            token_type_hint="refresh_token",
        )  # fmt: skip
        assert revoked.status_code == 200
        after = await client.introspect_token(
            meta["introspection_endpoint"], token=refreshed["access_token"]
        )
        assert after.json() == {"active": False}


async def test_authlib_reads_the_metadata(issuer: Issuer) -> None:
    """Authlib's RFC 8414 validator accepts every member but the empty response types."""
    settings = issuer.settings.with_overrides(issuer="https://auth.example.com")
    document = AuthorizationServerMetadata(
        metadata_document(settings.tokens.issuer, settings.tokens.issuer)
    )
    checks = [name for name in dir(document) if name.startswith("validate_")]
    assert "validate_token_endpoint" in checks
    for name in checks:
        if name != "validate_response_types_supported":
            getattr(document, name)()
    with pytest.raises(ValueError, match="response_types_supported"):
        document.validate()  # revocast has no authorization endpoint: see metadata.py
