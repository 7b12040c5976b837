"""The upstream identity provider: its keys, and the tokens it sends revocast.

An IdP (Okta, Google, Keycloak...) that users also sign in with can end their sessions:
an OIDC Back-Channel Logout token, or a pushed CAEP Security Event Token. Both are JWTs
signed by the IdP; this module checks them with PyJWT against the IdP's keys, one
configured issuer, audience and algorithm list.

Each algorithm verifies with one kind of key only (``KEY_KINDS``), and that is checked
before any signature is: ``none`` and HMAC are never accepted (the IdP's public key can
never serve as a shared secret), and a token whose ``alg`` does not fit the IdP's key
(ES256 naming an RSA key) is refused like any other bad token, with a 400.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from revocast.errors import InvalidRequest, SettingsError, StoreUnavailable
from revocast.settings import UpstreamSettings

REFETCH_EVERY_S = 10.0  # an unknown kid refetches the JWKS at most this often
LEEWAY_S = 30
MAX_TOKEN_CHARS = 8192

PublicKey = (
    rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey
)


@dataclass(frozen=True, slots=True)
class KeyKind:
    """The keys one algorithm verifies with (RFC 7518 §3.1, RFC 8037 §3.1)."""

    name: str
    types: tuple[type, ...]
    curve: type[ec.EllipticCurve] | None = None

    def fits(self, key: object) -> bool:
        if not isinstance(key, self.types):
            return False
        return self.curve is None or (
            isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, self.curve)
        )


_RSA = KeyKind("an RSA key", (rsa.RSAPublicKey,))
# Every algorithm an upstream token may use, and its key. Nothing else passes: not `none`,
# not HMAC, not RFC 9864's "Ed25519" (PyJWT has no such algorithm: configure EdDSA).
KEY_KINDS: dict[str, KeyKind] = {
    "RS256": _RSA, "RS384": _RSA, "RS512": _RSA,
    "PS256": _RSA, "PS384": _RSA, "PS512": _RSA,
    "ES256": KeyKind("an EC P-256 key", (ec.EllipticCurvePublicKey,), ec.SECP256R1),
    "ES384": KeyKind("an EC P-384 key", (ec.EllipticCurvePublicKey,), ec.SECP384R1),
    "ES512": KeyKind("an EC P-521 key", (ec.EllipticCurvePublicKey,), ec.SECP521R1),
    "EdDSA": KeyKind("an Ed25519 or Ed448 key",
                     (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)),
}  # fmt: skip


def describe(key: object) -> str:
    """What a key is, for a refusal that says why."""
    if isinstance(key, rsa.RSAPublicKey):
        return "an RSA key"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"an EC {key.curve.name} key"
    if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return "an EdDSA key"
    return "a symmetric (oct) key"


# RFC 8935 section 2.4 (registered by RFC 8936): why a SET was refused. invalid_key covers
# the signature too: the key, or the algorithm, is not one accepted here.
SetError = Literal["invalid_request", "invalid_key", "invalid_issuer", "invalid_audience"]
_SET_ERRORS: tuple[tuple[type[jwt.PyJWTError], SetError], ...] = (
    (jwt.InvalidIssuerError, "invalid_issuer"),
    (jwt.InvalidAudienceError, "invalid_audience"),
    (jwt.InvalidSignatureError, "invalid_key"),
    (jwt.InvalidKeyError, "invalid_key"),
    (jwt.InvalidAlgorithmError, "invalid_key"),
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


@dataclass(frozen=True, slots=True)
class TrustedKey:
    """One of the IdP's keys: a public key (bytes for an oct key, which fits nothing), and
    the ``alg`` and ``use`` its JWK names, if any."""

    key: PublicKey | bytes
    alg: str | None = None
    use: str | None = None


def _public(key: object) -> PublicKey | bytes | None:
    """The public half of what PyJWT or cryptography loaded; None for anything else."""
    if isinstance(key, bytes):
        return key
    public = getattr(key, "public_key", None)  # a private key published by mistake
    key = public() if callable(public) else key
    if isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        return key
    if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return key
    return None


def key_from_jwk(data: object) -> TrustedKey | None:
    """A JWK as a trusted key, or None when it is not one PyJWT can load."""
    if not isinstance(data, dict):
        return None
    try:
        loaded = _public(jwt.PyJWK(data).key)
    except (jwt.PyJWTError, ValueError, TypeError, KeyError):
        return None
    alg, use = data.get("alg"), data.get("use")
    if loaded is None or not isinstance(alg, str | None) or not isinstance(use, str | None):
        return None
    return TrustedKey(loaded, alg, use)


def _static_key(text: str) -> TrustedKey:
    text = text.strip()
    if text.startswith("{"):
        try:
            found = key_from_jwk(json.loads(text))
        except ValueError:
            found = None
        if found is None or isinstance(found.key, bytes):
            raise SettingsError(
                "REVOCAST_UPSTREAM_KEY is not a public JWK (RSA, EC or OKP): give the IdP's "
                "public key as a JWK or a PEM"
            )
        return found
    try:
        loaded = _public(load_pem_public_key(text.encode()))
    except (ValueError, TypeError):
        loaded = None
    if loaded is None or isinstance(loaded, bytes):
        raise SettingsError(
            "REVOCAST_UPSTREAM_KEY is not a PEM public key (RSA, EC, Ed25519 or Ed448): give "
            "the IdP's public key, -----BEGIN PUBLIC KEY-----"
        )
    return TrustedKey(loaded)


class UpstreamKeys:
    """A static key (PEM or JWK), or the IdP's JWKS URL, fetched again on an unknown kid."""

    def __init__(self, settings: UpstreamSettings) -> None:
        self.url = settings.upstream_jwks_url
        self._keys: dict[str, TrustedKey] = {}
        self._static: TrustedKey | None = None
        self._fetched_at = -REFETCH_EVERY_S
        if settings.upstream_key:
            self._static = _static_key(settings.upstream_key)
        elif not self.url:
            raise SettingsError("an upstream IdP needs REVOCAST_UPSTREAM_JWKS_URL or _KEY")

    async def key_for(self, kid: object) -> TrustedKey:
        if self._static is not None:
            return self._static
        if not isinstance(kid, str):
            raise UpstreamTokenRefused("the token names no kid: the IdP's JWKS has several keys")
        if kid not in self._keys:
            if time.monotonic() - self._fetched_at < REFETCH_EVERY_S:
                raise UpstreamKeysUnavailable(
                    f"no key {kid!r} yet; the IdP's JWKS is fetched again within "
                    f"{REFETCH_EVERY_S:g} s"
                )
            await self._fetch()
        found = self._keys.get(kid)
        if found is None:
            raise UpstreamTokenRefused(f"no key {kid!r} in the IdP's JWKS", "invalid_key")
        return found

    async def _fetch(self) -> None:
        self._fetched_at = time.monotonic()
        assert self.url is not None
        try:
            async with httpx.AsyncClient(timeout=5) as http:
                reply = await http.get(self.url)
                reply.raise_for_status()
                listed = reply.json().get("keys")
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            raise UpstreamKeysUnavailable(f"the IdP's JWKS could not be read: {exc}") from None
        if not isinstance(listed, list):
            raise UpstreamKeysUnavailable("the IdP's JWKS has no list of keys")
        # Keys PyJWT cannot load are left out; a token naming one is refused as unknown.
        keys = {
            jwk["kid"]: key
            for jwk in listed
            if isinstance(jwk, dict) and isinstance(jwk.get("kid"), str)
            if (key := key_from_jwk(jwk)) is not None
        }
        if not keys:
            raise UpstreamKeysUnavailable("the IdP's JWKS holds no key with a kid revocast loads")
        self._keys = keys


@contextlib.contextmanager
def refusing(what: str) -> Iterator[None]:
    """Whatever the JOSE library raises on a token is the token's fault: a 400, never a 500.

    PyJWT's own errors say what failed; anything else it lets through (a recursion error
    on deeply nested JSON, an overflow on a huge number) is named by its type only.
    """
    try:
        yield
    except jwt.PyJWTError as exc:
        reason: SetError = next(
            (code for kind, code in _SET_ERRORS if isinstance(exc, kind)), "invalid_request"
        )
        raise UpstreamTokenRefused(f"{what}: {exc}", reason) from None
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise UpstreamTokenRefused(f"{what}: malformed ({type(exc).__name__})") from None


class Upstream:
    """Checks tokens from the configured IdP."""

    def __init__(self, settings: UpstreamSettings) -> None:
        if not settings.upstream_issuer or not settings.upstream_audience:
            raise SettingsError("an upstream IdP needs REVOCAST_UPSTREAM_ISSUER and _AUDIENCE")
        unknown = [a for a in settings.upstream_algorithms if a not in KEY_KINDS]
        if unknown or not settings.upstream_algorithms:
            raise SettingsError(
                f"REVOCAST_UPSTREAM_ALGORITHMS may name only {', '.join(KEY_KINDS)} (asymmetric "
                f"algorithms PyJWT verifies), not {', '.join(unknown) or 'nothing'}: remove them"
            )
        self.issuer = settings.upstream_issuer
        self.audience = settings.upstream_audience
        self.algorithms = list(settings.upstream_algorithms)
        self.keys = UpstreamKeys(settings)

    @classmethod
    def configured(cls, settings: UpstreamSettings) -> Upstream | None:
        return cls(settings) if settings.upstream_issuer else None

    async def decode(
        self, token: str, *, typ: str, required: list[str], also_typ: str = ""
    ) -> dict[str, Any]:
        """The claims of a token from the IdP; UpstreamTokenRefused (400) otherwise.

        ``typ``, when the token has one, must be it (explicit typing, RFC 8725 §3.11), or
        ``also_typ`` where IdPs are known to send another.
        """
        if len(token) > MAX_TOKEN_CHARS:
            raise UpstreamTokenRefused(f"the token is over {MAX_TOKEN_CHARS} characters")
        with refusing("not a JWT"):
            header = jwt.get_unverified_header(token)
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise UpstreamTokenRefused(
                f"alg {alg!r} is not accepted: the IdP must sign with one of "
                f"{', '.join(self.algorithms)}",
                "invalid_key",
            )
        declared = str(header.get("typ", typ)).lower().removeprefix("application/")
        if declared not in (typ, also_typ or typ):
            raise UpstreamTokenRefused(f"typ must be {typ}")
        trusted = await self.keys.key_for(header.get("kid"))
        _check_fit(alg, trusted, header.get("kid"))
        with refusing("the IdP's token is not valid"):
            claims: dict[str, Any] = jwt.decode(
                token,
                trusted.key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY_S,
                options={"require": ["iss", "aud", "iat", *required]},
            )
        for name in ("iat", "exp", "nbf"):
            # PyJWT takes whatever int() takes ("123", true); RFC 7519 §2: a JSON number.
            value = claims.get(name, 0)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise UpstreamTokenRefused(f"{name} must be a number of seconds (NumericDate)")
            if not math.isfinite(value):
                raise UpstreamTokenRefused(f"{name} must be a finite number of seconds")
        return claims


def _check_fit(alg: str, trusted: TrustedKey, kid: object) -> None:
    """The key is one ``alg`` verifies with, and its JWK (if any) allows ``alg`` for
    signatures: checked before the signature, so no library sees a mismatched pair."""
    named = f"the IdP's key {kid!r}" if isinstance(kid, str) else "the IdP's key"
    if trusted.alg is not None and trusted.alg != alg:
        raise UpstreamTokenRefused(
            f"{named} is for {trusted.alg}, not {alg}: sign with it so", "invalid_key"
        )
    if trusted.use not in (None, "sig"):
        raise UpstreamTokenRefused(
            f"{named} is not for signatures (use {trusted.use}): sign with a signing key",
            "invalid_key",
        )
    kind = KEY_KINDS[alg]
    if not kind.fits(trusted.key):
        raise UpstreamTokenRefused(
            f"{alg} needs {kind.name}, and {named} is {describe(trusted.key)}: sign with an "
            "algorithm of that key's type",
            "invalid_key",
        )
