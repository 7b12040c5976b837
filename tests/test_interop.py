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
from authlib.jose import JsonWebKey, JsonWebToken  # type: ignore[import-untyped]
from joserfc import jwt as joserfc_jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import KeySet
from jwcrypto import jwk as jwcrypto_jwk  # type: ignore[import-untyped]
from jwcrypto import jwt as jwcrypto_jwt

from revocast import operator
from tests.conftest import Issuer

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
        assert check(token, jwks, settings.issuer, settings.audience) == uid


async def test_a_revoked_key_is_refused_once_the_jwks_is_fetched_again(
    issuer: Issuer, check: Check
) -> None:
    await issuer.add_user("alice")
    settings = issuer.settings
    token = (await issuer.login("alice"))["access_token"]
    kid = pyjwt.get_unverified_header(token)["kid"]
    await operator.revoke_key(issuer.ctx.writes, issuer.ctx.reads, settings, kid, "leaked")
    jwks = (await issuer.http.get("/.well-known/jwks.json")).json()
    assert kid not in {key["kid"] for key in jwks["keys"]}
    with pytest.raises(Exception):  # noqa: B017, PT011 (each library has its own error)
        check(token, jwks, settings.issuer, settings.audience)


NODE_DIR = Path(__file__).resolve().parents[1] / ".node"
NODE_SCRIPT = Path(__file__).resolve().parent / "support" / "node" / "verify.mjs"


def node_jose() -> tuple[str, Path]:
    """node and the folder holding jose (./scripts/setup installs it), or a skip saying why."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node's jose: node is not on this machine")
    if not (NODE_DIR / "node_modules" / "jose").is_dir():
        pytest.skip("Node's jose: not installed (./scripts/setup runs npm install when npm works)")
    return node, NODE_DIR


async def test_node_jose_accepts_tokens_straight_after_login(issuer: Issuer) -> None:
    node, folder = node_jose()
    uid = await issuer.add_user("alice")
    settings = issuer.settings
    jwks = (await issuer.http.get("/.well-known/jwks.json")).text
    staged = folder / "verify.mjs"  # beside node_modules, so that `import "jose"` resolves
    shutil.copyfile(NODE_SCRIPT, staged)
    checker = await asyncio.create_subprocess_exec(
        node, str(staged), jwks, settings.issuer, settings.audience,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert checker.stdin is not None
    assert checker.stdout is not None
    try:
        for _ in range(10):
            token = (await issuer.login("alice"))["access_token"]
            checker.stdin.write(token.encode() + b"\n")
            await checker.stdin.drain()
            answer = (await asyncio.wait_for(checker.stdout.readline(), 10)).decode().strip()
            assert answer == f"ok {uid}"
    finally:
        checker.stdin.close()
        await asyncio.wait_for(checker.wait(), 10)
