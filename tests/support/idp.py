"""An upstream IdP for the tests: its key, and the ID tokens, logout tokens and SETs it
signs with PyJWT, as an IdP's own library would."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

import jwt as pyjwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

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
