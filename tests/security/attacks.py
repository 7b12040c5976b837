"""Forged and malformed tokens, built as an attacker would, each with the reason it must get."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization

from revocast.keys import SigningKey


def b64(data: bytes | dict[str, Any] | str) -> str:
    if isinstance(data, dict):
        data = json.dumps(data)
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class Forge:
    """Everything an attacker may know: the public key, the JWKS, a valid token's shape."""

    key: SigningKey  # the deployment's real key (the suite needs valid tokens to tamper with)
    issuer: str
    audience: str

    def claims(self, **changes: Any) -> dict[str, Any]:
        now = int(time.time())
        base = {"iss": self.issuer, "aud": self.audience, "sub": "victim", "sid": "s1",
                "jti": "j1", "iat": now, "nbf": now, "exp": now + 300,
                "roles": ["user"]}  # fmt: skip
        base.update(changes)
        return {k: v for k, v in base.items() if v is not None}

    def header(self, **changes: Any) -> dict[str, Any]:
        base = {"alg": "EdDSA", "kid": self.key.kid, "typ": "at+jwt"}
        base.update(changes)
        return {k: v for k, v in base.items() if v is not None}

    def signed(self, header: dict[str, Any] | None = None, **claims: Any) -> str:
        head = header if header is not None else self.header()
        return jwt.encode(self.claims(**claims), self.key.private, "EdDSA", headers=head)

    def raw_signed(self, header_json: str, payload_json: str) -> str:
        """Sign arbitrary header and payload text with the real key (bypassing any encoder)."""
        signing_input = f"{b64(header_json)}.{b64(payload_json)}"
        return f"{signing_input}.{b64(self.key.private.sign(signing_input.encode()))}"

    def unsigned(self, header: dict[str, Any], signature: str = "") -> str:
        return f"{b64(header)}.{b64(self.claims())}.{signature}"

    def hmac_with(self, secret: bytes, alg: str = "HS256") -> str:
        signing_input = f"{b64(self.header(alg=alg))}.{b64(self.claims())}"
        digest = {"HS256": hashlib.sha256, "HS512": hashlib.sha512}[alg]
        return f"{signing_input}.{b64(hmac.new(secret, signing_input.encode(), digest).digest())}"

    @property
    def public_pem(self) -> bytes:
        return self.key.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


Attack = tuple[str, Callable[[Forge], str], str]  # id, forge, expected reason

ATTACKS: list[Attack] = [
    # alg none, every casing, with empty and junk signatures
    *[(f"alg-{alg}-{sig_id}", (lambda f, a=alg, s=sig: f.unsigned(f.header(alg=a), s)),
       "algorithm_not_allowed")
      for alg in ("none", "None", "NONE", "nOnE")
      for sig_id, sig in (("empty-sig", ""), ("junk-sig", "AAAA"))],
    ("alg-none-no-signature-segment", lambda f: f.unsigned(f.header(alg="none"))[:-1],
     "malformed_token"),
    ("alg-absent", lambda f: f.raw_signed(json.dumps({"kid": f.key.kid, "typ": "at+jwt"}),
                                           json.dumps(f.claims())), "algorithm_not_allowed"),
    # another algorithm than the one bound to the key
    ("alg-ES256-r-s-zero", lambda f: f.unsigned(f.header(alg="ES256"), b64(bytes(64))),
     "algorithm_not_allowed"),
    ("alg-RS256", lambda f: f.unsigned(f.header(alg="RS256"), b64(bytes(256))),
     "algorithm_not_allowed"),
    # Ed25519 is RFC 9864's name for the same signature (accepted); Ed448 is another curve.
    ("alg-Ed448-label", lambda f: f.raw_signed(json.dumps(f.header(alg="Ed448")),
                                                json.dumps(f.claims())), "algorithm_not_allowed"),
    # key confusion: the public key or the JWKS text as an HMAC secret
    ("hs256-public-pem", lambda f: f.hmac_with(f.public_pem), "algorithm_not_allowed"),
    ("hs256-raw-public-key", lambda f: f.hmac_with(f.key.private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)), "algorithm_not_allowed"),
    ("hs256-jwks-text", lambda f: f.hmac_with(json.dumps({"keys": [f.key.public.jwk]}).encode()),
     "algorithm_not_allowed"),
    ("hs512-jwk-x", lambda f: f.hmac_with(f.key.public.jwk["x"].encode(), "HS512"),
     "algorithm_not_allowed"),
    # kid
    ("kid-unknown", lambda f: f.signed(f.header(kid="another-deployment")), "unknown_key"),
    ("kid-absent", lambda f: f.signed(f.header(kid=None)), "missing_kid"),
    ("kid-number", lambda f: f.raw_signed(json.dumps(f.header(kid=7)), json.dumps(f.claims())),
     "missing_kid"),
    ("kid-path", lambda f: f.signed(f.header(kid="../../../../dev/null")), "unknown_key"),
    ("kid-sql", lambda f: f.signed(f.header(kid="x' OR '1'='1")), "unknown_key"),
    ("kid-empty", lambda f: f.signed(f.header(kid="")), "unknown_key"),
    # headers that would let the token bring its own key or rules
    *[(f"header-{name}", (lambda f, n=name, v=value: f.signed(f.header(**{n: v}))),
       "forbidden_header")
      for name, value in (("jku", "https://evil.example/jwks"), ("x5u", "https://evil.example/c"),
                          ("x5c", ["MIIB"]), ("x5t", "abc"))],
    ("header-jwk", lambda f: f.raw_signed(json.dumps(f.header() | {"jwk": f.key.public.jwk}),
                                           json.dumps(f.claims())), "forbidden_header"),
    ("header-crit", lambda f: f.raw_signed(json.dumps(f.header() | {"crit": ["exp"]}),
                                            json.dumps(f.claims())), "forbidden_header"),
    # typ
    ("typ-jwt", lambda f: f.signed(f.header(typ="JWT")), "wrong_token_type"),
    ("typ-absent", lambda f: f.signed(f.header(typ=None)), "wrong_token_type"),
    ("typ-refresh", lambda f: f.signed(f.header(typ="refresh+jwt")), "wrong_token_type"),
    # A Status List Token is signed with the same key: its typ keeps it from passing as an
    # access token, even with every access-token claim in it.
    ("typ-statuslist", lambda f: f.signed(f.header(typ="statuslist+jwt")), "wrong_token_type"),
    ("typ-statuslist-media", lambda f: f.signed(f.header(typ="application/statuslist+jwt")),
     "wrong_token_type"),
    # the status claim, when present, must be the draft's shape
    ("status-negative-idx",
     lambda f: f.signed(status={"status_list": {"idx": -1, "uri": "https://a.example/s/0"}}),
     "invalid_claims"),
    ("status-no-uri", lambda f: f.signed(status={"status_list": {"idx": 1}}), "invalid_claims"),
    ("status-string", lambda f: f.signed(status="valid"), "invalid_claims"),
    # required claims, each missing in turn
    *[(f"missing-{claim}", (lambda f, c=claim: f.signed(**{c: None})), "invalid_claims")
      for claim in ("iss", "aud", "sub", "sid", "jti", "iat", "nbf", "exp", "roles")],
    ("claim-types", lambda f: f.signed(exp="tomorrow"), "invalid_claims"),
    ("claim-bool-exp", lambda f: f.signed(exp=True), "invalid_claims"),
    # times are whole seconds within 0..2^53-1: no float, no infinity (issue 19 point 13)
    ("claim-exp-1e400", lambda f: f.raw_signed(json.dumps(f.header()), json.dumps(f.claims())
                                               .replace('"exp": ', '"exp": 1e400, "x": ')),
     "malformed_token"),
    ("claim-exp-fraction", lambda f: f.signed(exp=_now() + 300.5), "invalid_claims"),
    ("claim-exp-float", lambda f: f.signed(exp=float(_now() + 300)), "invalid_claims"),
    ("claim-exp-past-2-53", lambda f: f.signed(exp=2**53), "invalid_claims"),
    ("claim-exp-huge", lambda f: f.signed(exp=10**400), "invalid_claims"),
    ("claim-iat-negative", lambda f: f.signed(iat=-1), "invalid_claims"),
    ("claim-iat-ms-float", lambda f: f.signed(iat_ms=_now() * 1000.0), "invalid_claims"),
    ("wrong-iss", lambda f: f.signed(iss="https://evil.example"), "wrong_issuer"),
    ("wrong-aud", lambda f: f.signed(aud="another-api"), "wrong_audience"),
    ("aud-list", lambda f: f.signed(aud=[f.audience, "x"]), "invalid_claims"),
    ("expired", lambda f: f.signed(iat=_now() - 900, nbf=_now() - 900, exp=_now() - 600),
     "token_expired"),
    ("not-yet-valid", lambda f: f.signed(nbf=_now() + 600), "token_not_yet_valid"),
    ("iat-future", lambda f: f.signed(iat=_now() + 600), "issued_in_future"),
    # tampering
    ("tampered-payload", lambda f: _swap_payload(f.signed(), f.claims(roles=["admin"])),
     "bad_signature"),
    ("tampered-header", lambda f: _swap_header(f.signed(), f.header(typ="at+jwt", x="1")),
     "bad_signature"),
    ("signature-of-other-token", lambda f: _swap_signature(f.signed(), f.signed(sub="other")),
     "bad_signature"),
    # 85 characters is never a whole number of base64 bytes (cutting 4 would leave a
    # canonical encoding one time in 16, and the reason would depend on the signature).
    ("signature-truncated", lambda f: f.signed()[:-1], "malformed_token"),
    ("signature-shortened", lambda f: f.signed()[:-2], "bad_signature"),
    ("another-deployments-key", lambda f: jwt.encode(f.claims(), SigningKey.generate().private,
                                                     "EdDSA", headers=f.header()), "bad_signature"),
    # encoding
    ("trailing-dot", lambda f: f.signed() + ".", "malformed_token"),
    ("trailing-data", lambda f: f.signed() + "AA", "bad_signature"),
    ("extra-segment", lambda f: f.signed() + ".e30", "malformed_token"),
    ("missing-segment", lambda f: f.signed().rsplit(".", 1)[0], "malformed_token"),
    ("padding", lambda f: _pad(f.signed()), "malformed_token"),
    ("non-base64url", lambda f: f.signed().replace("-", "+").replace("_", "/") + "+/",
     "malformed_token"),
    ("whitespace", lambda f: f.signed().replace(".", ". ", 1), "malformed_token"),
    ("non-canonical-base64", lambda f: _noncanonical(f.signed()), "malformed_token"),
    ("header-not-json", lambda f: f"{b64('not json')}.{b64(f.claims())}.AAAA", "malformed_token"),
    ("header-array", lambda f: f"{b64('[1,2]')}.{b64(f.claims())}.AAAA", "malformed_token"),
    ("payload-not-json", lambda f: f.raw_signed(json.dumps(f.header()), "not json"),
     "malformed_token"),
    ("payload-nan", lambda f: f.raw_signed(json.dumps(f.header()),
                                           json.dumps(f.claims()).replace(
                                               '"exp": ', '"exp": NaN, "x": ')),
     "malformed_token"),
    ("duplicate-header-keys", lambda f: f.raw_signed(
        '{"alg":"EdDSA","kid":"' + f.key.kid + '","typ":"JWT","typ":"at+jwt"}',
        json.dumps(f.claims())), "malformed_token"),
    ("duplicate-claims", lambda f: f.raw_signed(
        json.dumps(f.header()), json.dumps(f.claims())[:-1] + ', "sub": "admin"}'),
     "malformed_token"),
    ("jwe-five-segments", lambda f: ".".join([b64({"alg": "dir", "enc": "A256GCM"}), "", "AAAA",
                                              "AAAA", "AAAA"]), "malformed_token"),
    ("too-large", lambda f: f.signed(pad="x" * 5000), "token_too_large"),
    ("empty", lambda f: "", "malformed_token"),
]  # fmt: skip


def _now() -> int:
    return int(time.time())


def _parts(token: str) -> list[str]:
    return token.split(".")


def _swap_payload(token: str, claims: dict[str, Any]) -> str:
    head, _, sig = _parts(token)
    return f"{head}.{b64(claims)}.{sig}"


def _swap_header(token: str, header: dict[str, Any]) -> str:
    _, payload, sig = _parts(token)
    return f"{b64(header)}.{payload}.{sig}"


def _swap_signature(token: str, other: str) -> str:
    head, payload, _ = _parts(token)
    return f"{head}.{payload}.{_parts(other)[2]}"


def _pad(token: str) -> str:
    head, payload, sig = _parts(token)
    return f"{head}.{payload}.{sig}=="


def _noncanonical(token: str) -> str:
    """Same signature bytes, another spelling: flip the unused low bits of the last character."""
    head, payload, sig = _parts(token)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(sig[-1])
    return f"{head}.{payload}.{sig[:-1]}{alphabet[last ^ 1]}"
