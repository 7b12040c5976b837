"""The upstream identity provider: its keys, and the tokens it sends revocast.

An IdP (Okta, Google, Keycloak...) that users also sign in with can end their sessions:
an OIDC Back-Channel Logout token, or a pushed CAEP Security Event Token. Both are JWTs
signed by the IdP; this module checks them with PyJWT against the IdP's keys, one
configured issuer, audience and algorithm list (``none`` and HMAC are never accepted, so
the IdP's public key can never serve as a shared secret).
"""

from __future__ import annotations

import json
import time
from typing import Any, Literal

import httpx
import jwt

from revocast.errors import InvalidRequest, SettingsError, StoreUnavailable
from revocast.settings import Settings

ASYMMETRIC = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                        "ES256", "ES384", "ES512", "EdDSA", "Ed25519"})  # fmt: skip
REFETCH_EVERY_S = 10.0  # an unknown kid refetches the JWKS at most this often
LEEWAY_S = 30

# RFC 8935 section 2.4 (registered by RFC 8936): why a SET was refused. invalid_key covers
# the signature too: the key, or the algorithm, is not one accepted here.
SetError = Literal["invalid_request", "invalid_key", "invalid_issuer", "invalid_audience"]
_SET_ERRORS: tuple[tuple[type[jwt.InvalidTokenError], SetError], ...] = (
    (jwt.InvalidIssuerError, "invalid_issuer"),
    (jwt.InvalidAudienceError, "invalid_audience"),
    (jwt.InvalidSignatureError, "invalid_key"),
)


class UpstreamTokenRefused(InvalidRequest):
    """The IdP's token is not valid here (signature, issuer, audience, times, claims);
    ``set_error`` is RFC 8935's code for it, which a SET's refusal answers as ``err``."""

    code = "invalid_token"
    explanation = "the IdP's token is not valid here: send one the configured IdP signed for us"

    def __init__(self, detail: str = "", set_error: SetError = "invalid_request") -> None:
        super().__init__(detail)
        self.set_error = set_error


class UpstreamKeysUnavailable(StoreUnavailable):
    """The IdP's keys cannot be read now: 503, so that the IdP sends the token again (a 400
    would tell it to give up, and the revocation would be lost)."""

    code = "upstream_keys_unavailable"
    status = 503
    explanation = "the IdP's keys cannot be read now: send the token again later"


class UpstreamKeys:
    """A static key (PEM or JWK), or the IdP's JWKS URL, fetched again on an unknown kid."""

    def __init__(self, settings: Settings) -> None:
        self.url = settings.upstream_jwks_url
        self._keys: dict[str, jwt.PyJWK] = {}
        self._static: jwt.PyJWK | Any | None = None
        self._fetched_at = -REFETCH_EVERY_S
        if settings.upstream_key:
            self._static = _static_key(settings.upstream_key)
        elif not self.url:
            raise SettingsError("an upstream IdP needs REVOCAST_UPSTREAM_JWKS_URL or _KEY")

    async def key_for(self, kid: str | None) -> Any:
        if self._static is not None:
            return self._static.key if isinstance(self._static, jwt.PyJWK) else self._static
        if kid not in self._keys:
            if time.monotonic() - self._fetched_at < REFETCH_EVERY_S:
                raise UpstreamKeysUnavailable(
                    f"no key {kid!r} yet; the IdP's JWKS is fetched again within "
                    f"{REFETCH_EVERY_S:g} s"
                )
            await self._fetch()
        found = self._keys.get(kid or "")
        if found is None:
            raise UpstreamTokenRefused(f"no key {kid!r} in the IdP's JWKS", "invalid_key")
        return found.key

    async def _fetch(self) -> None:
        self._fetched_at = time.monotonic()
        assert self.url is not None
        try:
            async with httpx.AsyncClient(timeout=5) as http:
                reply = await http.get(self.url)
                reply.raise_for_status()
                keys = jwt.PyJWKSet.from_dict(reply.json())
        except (httpx.HTTPError, ValueError, jwt.PyJWKSetError) as exc:
            raise UpstreamKeysUnavailable(f"the IdP's JWKS could not be read: {exc}") from None
        self._keys = {key.key_id: key for key in keys.keys if key.key_id}


def _static_key(text: str) -> Any:
    text = text.strip()
    if text.startswith("{"):
        return jwt.PyJWK.from_dict(json.loads(text))
    return text  # a PEM public key; PyJWT loads it for the algorithm in use


class Upstream:
    """Checks tokens from the configured IdP."""

    def __init__(self, settings: Settings) -> None:
        if not settings.upstream_issuer or not settings.upstream_audience:
            raise SettingsError("an upstream IdP needs REVOCAST_UPSTREAM_ISSUER and _AUDIENCE")
        self.issuer = settings.upstream_issuer
        self.audience = settings.upstream_audience
        self.algorithms = [a for a in settings.upstream_algorithms if a in ASYMMETRIC]
        self.keys = UpstreamKeys(settings)

    @classmethod
    def configured(cls, settings: Settings) -> Upstream | None:
        return cls(settings) if settings.upstream_issuer else None

    async def decode(
        self, token: str, *, typ: str, required: list[str], also_typ: str = ""
    ) -> dict[str, Any]:
        """The claims of a token from the IdP; UpstreamTokenRefused (400) otherwise.

        ``typ``, when the token has one, must be it (explicit typing, RFC 8725 §3.11), or
        ``also_typ`` where IdPs are known to send another.
        """
        if len(token) > 8192:
            raise UpstreamTokenRefused("the token is over 8 KiB")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise UpstreamTokenRefused("not a JWT") from None
        if header.get("alg") not in self.algorithms:
            raise UpstreamTokenRefused(f"alg {header.get('alg')!r} is not accepted", "invalid_key")
        declared = str(header.get("typ", typ)).lower().removeprefix("application/")
        if declared not in (typ, also_typ or typ):
            raise UpstreamTokenRefused(f"typ must be {typ}")
        key = await self.keys.key_for(header.get("kid"))
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[header["alg"]],
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY_S,
                options={"require": ["iss", "aud", "iat", *required]},
            )
        except jwt.InvalidTokenError as exc:
            reason: SetError = next(
                (code for kind, code in _SET_ERRORS if isinstance(exc, kind)), "invalid_request"
            )
            raise UpstreamTokenRefused(f"the IdP's token is not valid: {exc}", reason) from None
        return claims
