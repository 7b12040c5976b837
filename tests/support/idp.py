"""An upstream IdP for the tests: its key, and the ID tokens, logout tokens and SETs it
signs with PyJWT, as an IdP's own library would."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

import jwt as pyjwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

IDP = "https://idp.example.com"
AUDIENCE = "revocast-rp"
BACKCHANNEL = "http://schemas.openid.net/event/backchannel-logout"
CAEP = "https://schemas.openid.net/secevent/caep/event-type/"


@dataclass
class IdP:
    key: rsa.RSAPrivateKey
    kid: str = "idp-1"

    @classmethod
    def new(cls, kid: str = "idp-1") -> IdP:
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=2048), kid)

    def public_pem(self) -> str:
        return (
            self.key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(pyjwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [jwk | {"kid": self.kid, "alg": "RS256", "use": "sig"}]}

    def sign(self, claims: dict[str, Any], typ: str, **header: Any) -> str:
        now = int(time.time())
        body = {"iss": IDP, "aud": AUDIENCE, "iat": now, "jti": secrets.token_hex(8)} | claims
        return pyjwt.encode(body, self.key, algorithm="RS256",
                            headers={"kid": self.kid, "typ": typ} | header)  # fmt: skip

    def id_token(self, sub: str, sid: str | None, nonce: str | None) -> str:
        """An ID token for ``sub``, in the IdP session ``sid``, carrying the ``nonce`` of the
        authorization request it answers (None: the request had none)."""
        claims: dict[str, Any] = {"sub": sub, "exp": int(time.time()) + 300}
        if sid is not None:
            claims["sid"] = sid
        if nonce is not None:
            claims["nonce"] = nonce
        return self.sign(claims, "JWT")

    def logout_token(self, **claims: Any) -> str:
        base = {"exp": int(time.time()) + 120, "events": {BACKCHANNEL: {}}}
        return self.sign(base | claims, "logout+jwt")

    def set_token(self, event: str, subject: dict[str, Any]) -> str:
        return self.sign({"sub_id": subject, "events": {CAEP + event: {}}}, "secevent+jwt")


# Every algorithm a token can name, and one key of every type an IdP could publish.
ALGORITHMS = ["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
              "ES256", "ES384", "ES512", "EdDSA", "none"]  # fmt: skip
_CURVES = {"p256": ec.SECP256R1(), "p384": ec.SECP384R1(), "p521": ec.SECP521R1()}
_KIND_OF_ALG = {"RS": "rsa", "PS": "rsa", "ES256": "p256", "ES384": "p384", "ES512": "p521",
                "EdDSA": "ed25519", "HS": "oct"}  # fmt: skip
KEY_TYPES = ["rsa", "p256", "p384", "p521", "ed25519", "oct"]


def kind_for(alg: str) -> str:
    """The key type ``alg`` signs with (RFC 7518 §3.1, RFC 8037)."""
    return _KIND_OF_ALG.get(alg) or _KIND_OF_ALG[alg[:2]]


def new_key(kind: str) -> Any:
    """A private key of ``kind`` (an oct key is its secret bytes)."""
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if kind == "oct":
        return secrets.token_bytes(32)
    return ec.generate_private_key(_CURVES[kind])


def public_jwk(kind: str, key: Any) -> dict[str, Any]:
    if kind == "oct":
        jwk: dict[str, Any] = pyjwt.algorithms.HMACAlgorithm.to_jwk(key, as_dict=True)
        return jwk
    public: dict[str, Any]
    if kind == "rsa":
        public = pyjwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    elif kind == "ed25519":
        public = pyjwt.algorithms.OKPAlgorithm.to_jwk(key.public_key(), as_dict=True)
    else:
        public = ec_jwk(key.public_key())
    return public


def ec_jwk(key: ec.EllipticCurvePublicKey) -> dict[str, Any]:
    """Each coordinate at the curve's full length (RFC 7518, 6.2.1.2): PyJWT 2.9's to_jwk cut
    most P-521 ones short, and PyJWK then refused its own output."""
    size = (key.curve.key_size + 7) // 8
    numbers = key.public_numbers()

    def coordinate(value: int) -> str:
        return base64.urlsafe_b64encode(value.to_bytes(size, "big")).rstrip(b"=").decode()

    curve = {256: "P-256", 384: "P-384", 521: "P-521"}[key.curve.key_size]
    return {"kty": "EC", "crv": curve, "x": coordinate(numbers.x), "y": coordinate(numbers.y)}


def public_pem(key: Any) -> str:
    raw: bytes = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return raw.decode()


@dataclass
class KeyChain:
    """An IdP that publishes one key of every type, each under its type's name as kid, with
    no ``alg``: only the algorithm's own key type binds it."""

    keys: dict[str, Any]  # kid (= key type) -> private key
    attacker: dict[str, Any]  # key type -> a key of that type the IdP never published

    @classmethod
    def new(cls) -> KeyChain:
        return cls({kind: new_key(kind) for kind in KEY_TYPES},
                   {kind: new_key(kind) for kind in KEY_TYPES})  # fmt: skip

    def jwks(self) -> dict[str, Any]:
        return {"keys": [public_jwk(kid, key) | {"kid": kid} for kid, key in self.keys.items()]}

    def sign(self, claims: dict[str, Any], alg: str, kid: str, typ: str) -> str:
        """A token naming ``alg`` and ``kid``: signed with that kid's own private key when it
        is the type ``alg`` needs (the one case that may pass), else with an attacker's key
        of that type, or for HMAC with the kid's public text as the secret (the
        algorithm-confusion attack; for the oct key, its published secret)."""
        header = {"kid": kid, "typ": typ}
        if alg == "none":
            return pyjwt.encode(claims, "", algorithm="none", headers=header)
        if alg.startswith("HS"):
            secret = self.keys[kid] if kid == "oct" else public_pem(self.keys[kid]).encode()
            return _hmac_token(claims, alg, header, secret)
        kind = kind_for(alg)
        key = self.keys[kid] if kind == kid else self.attacker[kind]
        return pyjwt.encode(claims, key, algorithm=alg, headers=header)


def _hmac_token(claims: dict[str, Any], alg: str, header: dict[str, Any], secret: bytes) -> str:
    """HS* by hand: PyJWT refuses a PEM as an HMAC secret (its own confusion guard)."""
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    signing = f"{_b64(header | {'alg': alg})}.{_b64(claims)}"
    signature = hmac.new(secret, signing.encode(), digest).digest()
    return f"{signing}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


def _b64(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()
