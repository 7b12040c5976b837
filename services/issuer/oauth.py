"""The RFC 6749 token endpoint, RFC 7009 revocation and RFC 7662 introspection.

All three take ``application/x-www-form-urlencoded`` bodies and answer errors in RFC 6749
§5.2's shape. Clients authenticate as ``client_auth`` describes. Revoking either token of
a session ends the whole session (its refresh token and every access token minted for it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response

from revocast.claims import AccessClaims
from revocast.clients import DEFAULT_CLIENT_ID
from revocast.errors import (
    InsufficientScope,
    InvalidClient,
    InvalidCredentials,
    InvalidGrant,
    InvalidRefreshToken,
    InvalidRequest,
    TokenRejected,
    UnsupportedGrantType,
    UserBlocked,
    VerifierStale,
)
from revocast.events import ActorKind
from revocast.http import json_response
from revocast.issuer.bodies import read_raw
from revocast.issuer.client_auth import BUILT_IN, CallingClient, identify, is_confidential
from revocast.issuer.context import IssuerContext
from revocast.issuer.grants import Issued, parse_scope, password_grant, refresh_grant
from revocast.issuer.guards import INTROSPECTOR_ROLES, caller_with_role
from revocast.proof import EVENT_ID_HEADER
from revocast.roles import INTROSPECT
from revocast.usernames import MAX_INPUT_CHARS
from revocast.verifier.unchecked import signed_claims

FORM = "application/x-www-form-urlencoded"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_HINTS = ("refresh_token", "access_token")
_BOTH_CHALLENGES = 'Basic realm="revocast", Bearer realm="revocast"'


class Form:
    """A parsed form body; every parameter at most once (RFC 6749 §3.1)."""

    def __init__(self, fields: dict[str, list[str]]) -> None:
        self._fields = fields

    @classmethod
    async def read(cls, ctx: IssuerContext, request: Request) -> Form:
        raw = await read_raw(request, FORM, ctx.settings.http.max_body_bytes)
        try:
            text = raw.decode("ascii")
            fields = parse_qs(
                text, keep_blank_values=True, strict_parsing=bool(raw), errors="strict"
            )
        except (UnicodeDecodeError, ValueError):
            raise InvalidRequest(
                f"the body is not a valid {FORM} form: percent-encode each name=value pair"
            ) from None
        return cls(fields)

    def get(self, name: str, max_length: int = 8192) -> str | None:
        values = self._fields.get(name, [])
        if len(values) > 1:
            raise InvalidRequest(f"{name} is sent more than once: send each parameter once")
        if values and len(values[0]) > max_length:
            raise InvalidRequest(f"{name} is over {max_length} characters: send a shorter one")
        return values[0] if values else None

    def required(self, name: str, max_length: int = 8192) -> str:
        value = self.get(name, max_length)
        if not value:
            raise InvalidRequest(f"{name} is missing: add it to the form")
        return value

    async def client(self, ctx: IssuerContext, request: Request) -> CallingClient | None:
        return await identify(
            ctx, request.headers, self.get("client_id", 128), self.get("client_secret", 256)
        )

    def token_and_order(self) -> tuple[str, tuple[str, ...]]:
        """The ``token`` parameter, and the token kinds to look it up as, hinted one first."""
        token = self.required("token")
        hint = self.get("token_type_hint") or ""
        # An unknown hint is ignored, as RFC 7009 section 2.1 allows.
        order = (hint, *(kind for kind in _HINTS if kind != hint)) if hint in _HINTS else _HINTS
        return token, order


# The token endpoint (RFC 6749 §4.3 and §6) --------------------------------------------------


async def token(request: Request) -> Response:
    """``grant_type=password`` (username, password, scope) or ``refresh_token``."""
    ctx = IssuerContext.of(request)
    form = await Form.read(ctx, request)
    client = await form.client(ctx, request)
    grant_type = form.required("grant_type", 64)
    try:
        if grant_type == "password":
            issued = await password_grant(
                ctx,
                username=form.required("username", MAX_INPUT_CHARS),
                password=form.required("password", 1024),
                client=client or BUILT_IN,
                scope=parse_scope(form.get("scope", 1100)),
                address=request.client.host if request.client else "",
                user_agent=request.headers.get("user-agent", ""),
            )
        elif grant_type == "refresh_token":
            presented = form.required("refresh_token", 512)
            issued = await refresh_grant(ctx, presented, client, parse_scope(form.get("scope")))
        else:
            raise UnsupportedGrantType(
                f"grant_type {grant_type} is not supported: use password or refresh_token"
            )
    except UserBlocked:
        raise InvalidGrant(UserBlocked.explanation) from None
    except (InvalidCredentials, InvalidRefreshToken) as exc:
        raise InvalidGrant(exc.detail) from None  # RFC 6749 §5.2: one code, 400
    return json_response(_token_answer(ctx, issued), headers=NO_STORE)


def _token_answer(ctx: IssuerContext, issued: Issued) -> dict[str, Any]:
    return {
        "access_token": issued.access_token,
        "token_type": "Bearer",
        "expires_in": ctx.settings.tokens.access_ttl_s,
        "refresh_token": issued.refresh_token,
        "scope": issued.scope,
    }


# Revocation (RFC 7009) ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Owner:
    sid: str
    uid: str
    client_id: str
    issued_ms: int | None  # when the token was issued, if known


async def revoke(request: Request) -> Response:
    """200 whether or not the token was known (RFC 7009 §2.2). A token revoked already (a
    repeat after 503, or revoked otherwise) writes nothing: 200 with the id of the event
    that revoked it, once that is durable.

    A confidential client's tokens are revoked only by that client, authenticated; a
    public client's by anyone who holds them (and names no other client).
    """
    ctx = IssuerContext.of(request)
    form = await Form.read(ctx, request)
    client = await form.client(ctx, request)
    token, order = form.token_and_order()
    for kind in order:
        owner = await _owner_of(ctx, token, kind)
        if owner is not None:
            await _may_revoke(ctx, client, owner.client_id)
            event_id = await ctx.store.sessions.revoke_session(
                owner.sid,
                owner.uid,
                "oauth_revoke",
                issued_ms=owner.issued_ms,
                actor=owner.uid,
                actor_kind=ActorKind.USER,
            )
            return Response(status_code=200, headers=NO_STORE | {EVENT_ID_HEADER: event_id})
    return Response(status_code=200, headers=NO_STORE)


async def _owner_of(ctx: IssuerContext, token: str, kind: str) -> _Owner | None:
    if kind == "refresh_token":
        grant = await ctx.store.sessions.refresh_grant(token)
        if grant is None:
            return None
        return _Owner(grant.sid, grant.uid, grant.client_id, grant.issued_ms)
    try:
        claims = signed_claims(ctx.verifier, token)
    except TokenRejected:
        return None
    return _Owner(claims.sid, claims.sub, claims.client_id or DEFAULT_CLIENT_ID, claims.issued_ms)


async def _may_revoke(ctx: IssuerContext, client: CallingClient | None, owner: str) -> None:
    if client is not None and client.client_id != owner:
        # 400 invalid_grant, as Authlib's server answers it
        raise InvalidGrant("the token was issued to another client: revoke it as that client")
    if (client is None or not client.authenticated) and await is_confidential(ctx, owner):
        raise InvalidClient(f"the token belongs to the confidential client {owner}: "
                            "authenticate as it to revoke it")  # fmt: skip


# Introspection (RFC 7662) -------------------------------------------------------------------


class _LacksIntrospectRole(InsufficientScope):
    """RFC 7662 §2.3: a bearer token without the privilege gets 401, not RFC 6750's 403."""

    status = 401


async def introspect(request: Request) -> Response:
    """``{"active": false}`` for revoked, expired or unknown tokens, and for tokens the caller
    may not see. The caller is a bearer token with the role ``introspect`` or ``admin`` (any
    token), or a confidential client: the tokens issued to it, any token if it holds the role
    ``introspect`` (RFC 7662 §2.2 lets a server answer inactive to whom may not know)."""
    ctx = IssuerContext.of(request)
    form = await Form.read(ctx, request)
    only_for = await _authorize_introspection(ctx, request, form)
    token, order = form.token_and_order()
    for kind in order:
        answer = await _introspect(ctx, token, kind)
        if answer is not None:
            if only_for is not None and answer["client_id"] != only_for:
                break  # another client's token: as if unknown
            return json_response(answer, headers=NO_STORE)
    return json_response({"active": False}, headers=NO_STORE)


async def _authorize_introspection(ctx: IssuerContext, request: Request, form: Form) -> str | None:
    """The client whose tokens alone the caller may introspect; None: any token."""
    authorization = request.headers.get("authorization", "")
    if authorization.strip().lower().startswith("bearer"):
        try:
            caller_with_role(ctx, request, INTROSPECTOR_ROLES)
        except InsufficientScope as exc:
            raise _LacksIntrospectRole(exc.roles, exc.detail) from None
        return None
    client = await form.client(ctx, request)
    if client is None:
        raise InvalidClient(
            "authenticate as a confidential client (HTTP Basic or client_id and "
            "client_secret) or with a bearer token that has the role introspect",
            challenge=_BOTH_CHALLENGES,
        )
    if not client.authenticated:
        raise InvalidClient(f"{client.client_id} is a public client: only confidential "
                            "clients may introspect", challenge=_BOTH_CHALLENGES)  # fmt: skip
    return None if INTROSPECT in client.roles else client.client_id


async def _introspect(ctx: IssuerContext, token: str, kind: str) -> dict[str, Any] | None:
    if kind == "refresh_token":
        return await _introspect_refresh_token(ctx, token)
    try:
        claims = ctx.verifier.verify(token)
    except TokenRejected:
        return None
    except VerifierStale:
        claims = signed_claims(ctx.verifier, token)  # the online check below decides alone
    if not await ctx.store.sessions.live(claims.sid):
        return None
    return _access_token_answer(claims, await ctx.store.users.username_of(claims.sub))


def _access_token_answer(claims: AccessClaims, username: str | None) -> dict[str, Any]:
    return {
        "active": True,
        "token_type": "Bearer",
        "client_id": claims.client_id or DEFAULT_CLIENT_ID,
        "username": username,
        "scope": claims.scope if claims.scope is not None else " ".join(claims.roles),
        "sub": claims.sub,
        "aud": claims.aud,
        "iss": claims.iss,
        "jti": claims.jti,
        "exp": claims.exp,
        "iat": claims.iat,
        "nbf": claims.nbf,
        "sid": claims.sid,
        "roles": list(claims.roles),
    }


async def _introspect_refresh_token(ctx: IssuerContext, token: str) -> dict[str, Any] | None:
    """What a live refresh token would grant now: the user's roles, within its login's scope."""
    grant = await ctx.store.sessions.refresh_grant(token)
    if grant is None or not grant.live:
        return None
    live, scope = await ctx.store.sessions.scope(grant.sid)
    if not live:
        return None
    roles = await ctx.store.authority.roles_of(grant.uid)
    answer: dict[str, Any] = {
        "active": True,
        "client_id": grant.client_id,
        "username": await ctx.store.users.username_of(grant.uid),
        "scope": " ".join(r for r in roles if scope is None or r in scope),
        "sub": grant.uid,
        "iss": ctx.settings.tokens.issuer,
        "sid": grant.sid,
    }
    if grant.issued_ms is not None:
        answer["iat"] = grant.issued_ms // 1000
        answer["exp"] = answer["iat"] + ctx.settings.tokens.refresh_ttl_s
    return answer
