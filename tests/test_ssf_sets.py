"""SETs never pass as access tokens (issue 19, point 6).

Before: SETs were signed with the access-token key, had no ``exp``, and a receiver could
name the API's audience as its stream's ``aud``; PyJWT (default options), jwcrypto, joserfc,
Authlib and Node's jose then took a SET for an access token to the API. Now a stream may not
name that audience, and SETs are signed with a key of their own that only the SSF JWKS
publishes: each library, given the access tokens' JWKS as an API would be, refuses every SET,
even one naming the API's audience, and even a perfect access token signed with the SET key.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from typing import Any, cast

import jwt as pyjwt
import pytest
from joserfc import jwt as joserfc_jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import KeySet
from jwcrypto import jwk as jwcrypto_jwk  # type: ignore[import-untyped]
from jwcrypto import jwt as jwcrypto_jwt

from revocast.errors import TokenRejected
from revocast.issuer import operator
from revocast.issuer.security_events import SET_TTL_S, VERIFICATION, sign
from revocast.issuer.tokens import compact_jws
from revocast.keys import b64url_decode
from revocast.store.signals import keys as signal_keys
from tests.conftest import Issuer, VerifierFactory, bearer
from tests.test_interop import NodeJose, node_jose
from tests.test_ssf import poll, receiver

with warnings.catch_warnings():
    import authlib.deprecate  # type: ignore[import-untyped]

    warnings.simplefilter("ignore", authlib.deprecate.AuthlibDeprecationWarning)
    from authlib.jose import JsonWebKey, JsonWebToken  # type: ignore[import-untyped]

Decode = Callable[[str, dict[str, Any], str, str], dict[str, Any]]  # token, jwks, iss, aud


def pyjwt_decode(token: str, jwks: dict[str, Any], iss: str, aud: str) -> dict[str, Any]:
    """PyJWT with its default options, as an API would call it with a JWKS."""
    key = pyjwt.PyJWKSet.from_dict(jwks)[pyjwt.get_unverified_header(token)["kid"]]
    return pyjwt.decode(token, key, algorithms=["EdDSA"], audience=aud, issuer=iss)


def jwcrypto_decode(token: str, jwks: dict[str, Any], iss: str, aud: str) -> dict[str, Any]:
    keys = jwcrypto_jwk.JWKSet.from_json(json.dumps(jwks))
    checked = jwcrypto_jwt.JWT(jwt=token, key=keys, check_claims={"iss": iss, "aud": aud})
    return cast(dict[str, Any], json.loads(checked.claims))


def joserfc_decode(token: str, jwks: dict[str, Any], iss: str, aud: str) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)  # joserfc on the name EdDSA
        decoded = joserfc_jwt.decode(token, KeySet.import_key_set(cast(Any, jwks)),
                                     algorithms=["EdDSA"])  # fmt: skip
    rules = joserfc_jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": iss}, aud={"essential": True, "value": aud}
    )
    rules.validate(decoded.claims)
    return dict(decoded.claims)


def authlib_decode(token: str, jwks: dict[str, Any], iss: str, aud: str) -> dict[str, Any]:
    claims = JsonWebToken(["EdDSA"]).decode(
        token, JsonWebKey.import_key_set(jwks),
        claims_options={"iss": {"essential": True, "value": iss},
                        "aud": {"essential": True, "value": aud}},
    )  # fmt: skip
    claims.validate()
    return dict(claims)


DECODERS: dict[str, Decode] = {
    "pyjwt": pyjwt_decode,
    "jwcrypto": jwcrypto_decode,
    "joserfc": joserfc_decode,
    "authlib": authlib_decode,
}


def accepted(decode: Decode, token: str, jwks: dict[str, Any], iss: str, aud: str) -> bool:
    """Whether the library takes ``token`` for one of ``aud``'s: decoded and validated."""
    try:
        decode(token, jwks, iss, aud)
    except Exception:  # each library has its own errors
        return False
    return True


async def sets_naming_the_api(issuer: Issuer) -> list[str]:
    """The worst SETs there can be: one made by the transmitter's own signing code for the
    access tokens' audience (as a stream could ask before), and one polled from a stream."""
    settings = issuer.settings
    worst = await sign(issuer.ctx, jti="verify.x", audience=settings.tokens.audience,
                       event_type=VERIFICATION, body={},
                       subject={"format": "opaque", "id": "ssf_x"})  # fmt: skip
    auth, stream = await receiver(issuer)
    asked = {"stream_id": stream["stream_id"], "state": "s"}
    assert (await issuer.http.post("/ssf/verify", headers=auth, json=asked)).status_code == 204
    polled = list((await poll(issuer, auth, stream))["sets"].values())
    assert len(polled) == 1
    return [worst, *polled]


async def access_token_signed_with_the_set_key(issuer: Issuer) -> tuple[str, str]:
    """(a real access token, the same header and claims signed with the SET key instead)."""
    await issuer.add_user("alice")
    token = (await issuer.login("alice"))["access_token"]
    header_b64, claims_b64, _ = token.split(".")
    header = json.loads(b64url_decode(header_b64))
    set_key = issuer.ctx.minter.keyring.set_key(header["kid"])
    forged = compact_jws(header | {"kid": set_key.kid}, json.loads(b64url_decode(claims_b64)),
                         set_key.private)  # fmt: skip
    return token, forged


async def test_a_stream_cannot_name_the_access_tokens_audience(issuer: Issuer) -> None:
    await issuer.add_user("receiver", ["ssf"])
    auth = bearer(await issuer.login("receiver"))
    for aud in (issuer.settings.tokens.audience, "x" * 257):
        reply = await issuer.http.post("/ssf/stream", headers=auth, json={"aud": aud})
        assert (reply.status_code, reply.json()["error"]) == (400, "invalid_request"), aud
    assert await issuer.ctx.store.signals.ssf_streams() == {}  # nothing written


@pytest.mark.parametrize("library", list(DECODERS))
async def test_no_set_decodes_as_an_access_token(issuer: Issuer, library: str) -> None:
    settings = issuer.settings
    jwks = (await issuer.http.get("/.well-known/jwks.json")).json()
    decode = DECODERS[library]
    token, forged = await access_token_signed_with_the_set_key(issuer)
    assert accepted(
        decode, token, jwks, settings.tokens.issuer, settings.tokens.audience
    )  # the control
    assert not accepted(decode, forged, jwks, settings.tokens.issuer, settings.tokens.audience)
    for made in await sets_naming_the_api(issuer):
        assert not accepted(decode, made, jwks, settings.tokens.issuer, settings.tokens.audience)


async def test_node_jose_takes_no_set_for_an_access_token(issuer: Issuer) -> None:
    node_jose()  # skips, saying why, where Node's jose is not installed
    settings = issuer.settings
    jwks = (await issuer.http.get("/.well-known/jwks.json")).text
    token, forged = await access_token_signed_with_the_set_key(issuer)
    checker = await NodeJose.start(jwks, settings.tokens.issuer, settings.tokens.audience)
    try:
        assert (await checker.check(token)).startswith("ok ")  # the control
        assert await checker.check(forged) == "refused ERR_JWKS_NO_MATCHING_KEY"
        for made in await sets_naming_the_api(issuer):
            assert await checker.check(made) == "refused ERR_JWKS_NO_MATCHING_KEY"
    finally:
        await checker.close()


async def test_revocasts_verifiers_refuse_the_set_key(
    issuer: Issuer, make_verifier: VerifierFactory
) -> None:
    verifier = await make_verifier()
    token, forged = await access_token_signed_with_the_set_key(issuer)
    assert verifier.verify(token).sub
    with pytest.raises(TokenRejected) as refused:
        verifier.verify(forged)
    assert refused.value.code == "unknown_key"
    mine = await issuer.http.get("/v1/sessions", headers={"Authorization": f"Bearer {forged}"})
    assert mine.status_code == 401  # the issuer's own verifier too


async def test_sets_verify_with_the_ssf_jwks_expire_and_leave_with_their_key(
    issuer: Issuer,
) -> None:
    """A receiver's view: the SSF configuration names a JWKS holding the SET key (and only
    it); SETs verify there for the stream's audience, carry exp, and the SET key leaves that
    JWKS when its access-token key is revoked."""
    meta = (await issuer.http.get("/.well-known/ssf-configuration")).json()
    ssf_jwks = (await issuer.http.get(meta["jwks_uri"])).json()
    access_jwks = (await issuer.http.get("/.well-known/jwks.json")).json()
    set_kids = {key["kid"] for key in ssf_jwks["keys"]}
    access_kids = {key["kid"] for key in access_jwks["keys"]}
    assert len(set_kids) == 1
    assert not set_kids & access_kids
    auth, stream = await receiver(issuer)
    asked = {"stream_id": stream["stream_id"]}
    assert (await issuer.http.post("/ssf/verify", headers=auth, json=asked)).status_code == 204
    (made,) = (await poll(issuer, auth, stream))["sets"].values()
    for library, decode in DECODERS.items():
        claims = decode(made, ssf_jwks, issuer.settings.tokens.issuer, "https://rp.example")
        assert claims["exp"] == claims["iat"] + SET_TTL_S, library
        assert "sub" not in claims
    (kid,) = access_kids
    await operator.revoke_key(issuer.ctx.store, issuer.settings, kid, "test")
    after = (await issuer.http.get(meta["jwks_uri"])).json()
    assert set_kids.isdisjoint(key["kid"] for key in after["keys"])
    assert len(after["keys"]) == 1  # the new active key's SET key


async def test_a_stream_made_before_the_check_gets_sets_for_itself(issuer: Issuer) -> None:
    """A stream stored with the access tokens' audience (made before it was refused): its
    SETs name the stream instead."""
    auth, stream = await receiver(issuer)
    stream_id = stream["stream_id"]
    found = await issuer.ctx.store.signals.ssf_stream(stream_id)
    assert found is not None
    config = json.loads(found[0]) | {"aud": issuer.settings.tokens.audience}
    streams = signal_keys.ssf_streams(issuer.ctx.store.keys.global_)
    await issuer.ctx.backend.on_primary(
        streams, lambda c: c.hset(streams, stream_id, json.dumps(config))
    )
    assert (await issuer.http.post("/ssf/verify", headers=auth,
                                   json={"stream_id": stream_id})).status_code == 204  # fmt: skip
    (made,) = (await poll(issuer, auth, stream))["sets"].values()
    assert pyjwt.decode(made, options={"verify_signature": False})["aud"] == stream_id
