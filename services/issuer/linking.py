"""Linking a local user to the upstream IdP's user at login, with proof that this login
obtained the ID token it presents (OIDC Core 1.0 §3.1.2.1 ``nonce``, §15.5.2).

A client that wants the link first asks ``POST /v1/login/upstream-nonce`` for a pair: the
``upstream_nonce``, a secret it keeps, and ``nonce``, its SHA-256, which it sends in its
authorization request to the IdP. The IdP copies ``nonce`` into the ID token. At login the
client sends the ID token with the secret: the ID token must carry the secret's hash, the
secret must be one revocast issued (an HMAC under a deployment key, so issuing stores
nothing) and unexpired, and it is spent in the same step as the link. So an ID token that
leaked, or that its owner's client already used, links nothing; and a link, once made,
never moves to another user (an operator removes it: ``revocast upstream unlink``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import time
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from revocast.errors import Conflict, InvalidRequest, NotFound
from revocast.events import ActorKind
from revocast.http import json_response
from revocast.issuer.context import IssuerContext
from revocast.issuer.grants import Issued
from revocast.issuer.oauth import NO_STORE
from revocast.issuer.upstream import LEEWAY_S, Upstream, UpstreamTokenRefused
from revocast.lifetimes import UPSTREAM_NONCE_TTL_S
from revocast.store.records import UpstreamLink

_RANDOM, _EXPIRY, _TAG = 16, 8, 32  # bytes of an upstream nonce: random, expiry (s), HMAC
_SIZE = _RANDOM + _EXPIRY + _TAG
NONCE_TTL_S = UPSTREAM_NONCE_TTL_S  # an upstream nonce's lifetime, its key's TTL at most


class UpstreamNonceRefused(InvalidRequest):
    """The login's upstream nonce is not one revocast issued, is expired or spent, or is not
    the one the ID token carries."""

    code = "invalid_nonce"
    explanation = (
        "the upstream nonce is not valid for this ID token: get a new one from "
        "POST /v1/login/upstream-nonce and sign in at the IdP again with its nonce"
    )


@dataclass(frozen=True, slots=True)
class Claimed:
    """What a login's ID token and nonce claim, checked for everything but the password."""

    link: UpstreamLink
    nonce: str  # the ID token's nonce: the secret's hash
    expires_s: int  # when the secret stops being accepted (Unix seconds)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _tag(key: bytes, prefix: str, payload: bytes) -> bytes:
    context = f"revocast upstream nonce v1|{prefix}|".encode()
    return hmac.digest(key, context + payload, hashlib.sha256)


def nonce_of(secret: str) -> str:
    """The ``nonce`` that goes to the IdP for a secret: its SHA-256, base64url."""
    return _b64(hashlib.sha256(secret.encode()).digest())


def issue(key: bytes, prefix: str, now_s: float) -> tuple[str, int]:
    """A new secret and when it expires."""
    expires_s = int(now_s) + NONCE_TTL_S
    payload = os.urandom(_RANDOM) + expires_s.to_bytes(_EXPIRY, "big")
    return _b64(payload + _tag(key, prefix, payload)), expires_s


def verify(key: bytes, prefix: str, secret: str, now_s: float) -> int:
    """When a secret revocast issued expires; UpstreamNonceRefused if it is not one, or
    it has expired."""
    try:
        raw = base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != _SIZE or _b64(raw) != secret:  # one spelling only
        raise UpstreamNonceRefused("upstream_nonce is not one revocast issued")
    payload, tag = raw[:-_TAG], raw[-_TAG:]
    if not hmac.compare_digest(tag, _tag(key, prefix, payload)):
        raise UpstreamNonceRefused("upstream_nonce is not one revocast issued")
    expires_s = int.from_bytes(payload[_RANDOM:], "big")
    if expires_s < now_s:
        raise UpstreamNonceRefused(f"upstream_nonce expired ({NONCE_TTL_S} s after it was issued)")
    return expires_s


def _configured(ctx: IssuerContext) -> Upstream:
    if ctx.upstream is None:
        raise NotFound(
            "no upstream IdP is configured here (REVOCAST_UPSTREAM_ISSUER): log in without "
            "an upstream identity"
        )
    return ctx.upstream


async def upstream_nonce(request: Request) -> Response:
    """``POST /v1/login/upstream-nonce``: a new secret and its nonce, for one login. Issuing
    stores nothing (the secret carries its expiry and revocast's HMAC)."""
    ctx = IssuerContext.of(request)
    _configured(ctx)
    key = await ctx.store.signals.upstream_nonce_key()
    secret, _ = issue(key, ctx.settings.redis.key_prefix, time.time())
    body = {"upstream_nonce": secret, "nonce": nonce_of(secret), "expires_in": NONCE_TTL_S}
    return json_response(body, headers=NO_STORE)


async def claimed(ctx: IssuerContext, id_token: str | None, secret: str | None) -> Claimed | None:
    """The upstream identity a login claims, checked before anything is written (the ID
    token, the nonce it carries, the secret): 400 for any fault. None without one."""
    if id_token is None and secret is None:
        return None
    upstream = _configured_for_login(ctx)
    if id_token is None or secret is None:
        raise InvalidRequest(
            "upstream_id_token and upstream_nonce go together: send the ID token the IdP "
            "issued for the nonce of POST /v1/login/upstream-nonce, with that upstream_nonce"
        )
    claims = await upstream.decode(id_token, typ="jwt", required=["exp", "sub", "nonce"])
    sub, sid, nonce = claims["sub"], claims.get("sid"), claims["nonce"]
    if not isinstance(sub, str) or not (sid is None or isinstance(sid, str)):
        raise UpstreamTokenRefused(
            "the ID token's sub and sid are not strings: send an ID token the IdP issued"
        )
    key = await ctx.store.signals.find_upstream_nonce_key()  # none yet: no nonce was ever issued
    expires_s = verify(key or b"", ctx.settings.redis.key_prefix, secret, time.time())
    if not isinstance(nonce, str) or not hmac.compare_digest(nonce, nonce_of(secret)):
        raise UpstreamNonceRefused(
            "the ID token's nonce is not this upstream_nonce's: send the ID token the IdP "
            "issued for it"
        )
    return Claimed(UpstreamLink(upstream.issuer, sub, sid), nonce, expires_s)


def _configured_for_login(ctx: IssuerContext) -> Upstream:
    if ctx.upstream is None:
        raise InvalidRequest(
            "upstream_id_token was sent, but no upstream IdP is configured here "
            "(REVOCAST_UPSTREAM_ISSUER): leave it out"
        )
    return ctx.upstream


async def check_linkable(ctx: IssuerContext, claim: Claimed, username: str) -> None:
    """Refuse, before the password is checked and a session made, what the link would
    refuse anyway (reads only; ``link`` decides)."""
    issuer = claim.link.issuer
    if await ctx.store.signals.upstream_nonce_spent(issuer, claim.nonce):
        raise UpstreamNonceRefused("this upstream_nonce was used by a login already")
    linked = await ctx.store.signals.upstream_user(issuer, claim.link.sub)
    found = await ctx.store.users.find(username)
    if linked is not None and (found is None or found[0] != linked):
        raise Conflict(_TAKEN)


_TAKEN = (
    "this IdP identity is linked to another user here: log in as that user, or ask an "
    "operator to remove the link (revocast upstream unlink)"
)


async def link(ctx: IssuerContext, claim: Claimed, issued: Issued) -> None:
    """Spend the nonce and link, in one step. If another login spent the nonce or took the
    IdP user meanwhile, the session just made is ended and the login refused."""
    result = await ctx.store.signals.link_upstream(
        claim.link,
        issued.uid,
        nonce=claim.nonce,
        nonce_ttl_s=claim.expires_s - int(time.time()) + LEEWAY_S,
        sid=issued.sid,
    )
    if result in ("linked", "kept"):
        return
    await ctx.store.sessions.revoke_session(  # revocast's rule: a link refused ends the login
        issued.sid, issued.uid, "upstream_link_refused", actor_kind=ActorKind.POLICY
    )
    if result == "taken":
        raise Conflict(_TAKEN)
    raise UpstreamNonceRefused("this upstream_nonce was used by a login already")
