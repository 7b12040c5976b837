"""The two ways to get tokens, a password and a refresh token, for /v1 and /oauth/token alike.

Each answers an ``Issued``: the access token and refresh token, with what the endpoint
needs to describe them. How they are delivered (JSON body, cookies, RFC 6749 form) is the
endpoint's business.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass

from revocast import usernames
from revocast.clients import DEFAULT_CLIENT_ID
from revocast.errors import (
    InvalidClient,
    InvalidCredentials,
    InvalidRefreshToken,
    InvalidScope,
    RevocastError,
)
from revocast.ids import new_refresh_token, new_session_id
from revocast.issuer.client_auth import CallingClient, is_confidential
from revocast.issuer.context import IssuerContext
from revocast.issuer.tokens import seal_successor, unseal_successor

_ROLE = re.compile(r"[a-z][a-z0-9_:-]{0,31}")


@dataclass(frozen=True, slots=True)
class Issued:
    access_token: str
    refresh_token: str
    uid: str
    sid: str
    scope: str  # the roles the access token carries, space-separated (RFC 6749 §3.3)


def parse_scope(scope: str | None) -> list[str] | None:
    """The roles a ``scope`` parameter asks for; None (every role the user holds) if absent."""
    if scope is None or not scope.strip():
        return None
    asked = scope.split()
    if len(asked) > 32 or not all(_ROLE.fullmatch(role) for role in asked):
        raise InvalidScope(
            "scope must be up to 32 role names separated by spaces: ask for roles the user "
            "holds, or send no scope for all of them"
        )
    return list(dict.fromkeys(asked))


async def signing_kid(ctx: IssuerContext) -> str:
    """The active key; 503 before writing anything when no token could be signed with it.

    A key revoked between this read and the signature only makes the new token
    dead on arrival everywhere (verifiers refuse every token of a revoked key).
    """
    kid = await ctx.store.signing.signing_kid() or ""
    if kid:
        await ctx.minter.keyring.fetch(ctx.store, kid)
    return ctx.minter.keyring.get(kid).kid


async def _signing_kid_or_error(ctx: IssuerContext) -> str | RevocastError:
    """``signing_kid``, read beside a grant's first round trip: its refusal is raised where
    the grant checked the key before, after the credentials."""
    try:
        return await signing_kid(ctx)
    except RevocastError as exc:
        return exc


def _usable(kid: str | RevocastError) -> str:
    if isinstance(kid, RevocastError):
        raise kid
    return kid


async def password_grant(
    ctx: IssuerContext,
    *,
    username: str,
    password: str,
    client: CallingClient,
    scope: list[str] | None,
    address: str,
    user_agent: str,
) -> Issued:
    """A new session for the user, throttled per client address, per username and address,
    and per username (in its normal form, so that every spelling of one name counts against
    it): each attempt is counted before its password is checked (429 past a limit), and
    the login forgives it (``revocast.store.sessions.throttle``).

    Three round trips, one after another: the address's count with the active key and the
    name's user id beside it; the username's count with the user's hash (argon2 runs
    next); the login script, which forgives the attempt.
    """
    username = usernames.normalize(username)
    ctx.passwords.refuse_when_full()  # before any other work: a refusal must cost nothing
    logins = ctx.store.sessions.throttle
    _, expected, active = await asyncio.gather(
        logins.count_client(address), logins.learn(username), _signing_kid_or_error(ctx)
    )
    # Counted for unknown names too: the same answer, work and trace either way.
    attempt = await logins.attempt(username, address, expected)
    if not await ctx.passwords.verify(attempt.password_hash or None, password) or not attempt.uid:
        raise InvalidCredentials()
    uid = attempt.uid
    kid = _usable(active)
    keyspace = ctx.store.keys
    sid = new_session_id(keyspace, uid)
    refresh_token = new_refresh_token(keyspace, uid)
    issued_ms, roles_json, status_idx = await ctx.store.sessions.login(
        uid,
        sid,
        refresh_token,
        attempt=attempt,
        user_agent=user_agent[:256],
        client=address,
        client_id=client.client_id,
        scope=scope,
    )
    roles = json.loads(roles_json)
    granted = roles if scope is None else [role for role in roles if role in scope]
    return _issue(ctx, uid, sid, granted, issued_ms, refresh_token, kid, client.client_id,
                  status_idx)  # fmt: skip


async def refresh_grant(
    ctx: IssuerContext,
    presented: str,
    client: CallingClient | None,
    narrow: list[str] | None = None,
) -> Issued:
    """Rotate a refresh token for the client it was issued to (RFC 6749 §6).

    ``client`` is who the request says it is (None: it named no client, so it acts for the
    built-in one). Another client's tokens need that client named, and a confidential one
    authenticated; a removed client's tokens are dead.
    ``narrow`` asks for fewer roles in this access token (InvalidScope if it names one
    the session does not grant); the refresh token keeps what its login granted.

    Two round trips: the token's record with the active key beside it, the rotation.
    """
    grant, active = await asyncio.gather(
        ctx.store.sessions.refresh_grant(presented), _signing_kid_or_error(ctx)
    )
    if grant is None:
        raise InvalidRefreshToken()
    if client is None and grant.client_id != DEFAULT_CLIENT_ID:
        # Naming no client is acting for the built-in one: another client's token, public
        # or confidential, refreshes only for the client that names itself.
        confidential = await is_confidential(ctx, grant.client_id)
        if confidential is None:
            raise InvalidRefreshToken(
                f"the client {grant.client_id} this refresh token was issued to was removed: "
                "log in again"
            )
        if confidential:
            raise InvalidClient(f"the refresh token belongs to the confidential client "
                                f"{grant.client_id}: authenticate as it")  # fmt: skip
        raise InvalidRefreshToken(
            f"the refresh token was issued to the client {grant.client_id}: send its client_id "
            "with it"
        )
    if client is not None and client.client_id != grant.client_id:
        raise InvalidRefreshToken(
            "the refresh token was issued to another client: refresh as that client, or log in"
        )
    if narrow is not None:
        await _check_narrowing(ctx, grant.uid, grant.sid, narrow)  # before anything is written
    kid = _usable(active)
    successor = new_refresh_token(ctx.store.keys, presented)
    sealed = seal_successor(presented, successor)
    result = await ctx.store.sessions.refresh(presented, grant, successor, sealed)
    if result.status == "reused":
        raise InvalidRefreshToken(
            "the refresh token was used before, so its session was revoked in case it was "
            "stolen: log in again"
        )
    if result.status == "grace":
        # A retry or a second tab: hand out the successor already issued.
        unsealed = unseal_successor(presented, result.sealed_next)
        if unsealed is None:
            raise InvalidRefreshToken()
        successor = unsealed
    roles = json.loads(result.roles_json)
    if result.scope_json:
        granted = set(json.loads(result.scope_json))
        roles = [role for role in roles if role in granted]  # never more than at login
    if narrow is not None:
        roles = [role for role in roles if role in narrow]
    return _issue(ctx, result.uid, result.sid, roles, result.now_ms, successor, kid,
                  grant.client_id, result.status_idx)  # fmt: skip


async def _check_narrowing(ctx: IssuerContext, uid: str, sid: str, narrow: list[str]) -> None:
    _, granted = await ctx.store.sessions.scope(sid)
    held = await ctx.store.authority.roles_of(uid)
    if not all(role in held and (granted is None or role in granted) for role in narrow):
        raise InvalidScope(
            "scope names a role this refresh token does not grant: ask only for roles its "
            "login granted"
        )


def _issue(
    ctx: IssuerContext,
    uid: str,
    sid: str,
    roles: list[str],
    issued_ms: int,
    refresh_token: str,
    kid: str,
    client_id: str,
    status_idx: int,
) -> Issued:
    status = (ctx.store.keys.of(sid).index, status_idx)  # the session's list and index
    access = ctx.minter.mint(uid=uid, sid=sid, roles=roles, issued_ms=issued_ms, kid=kid,
                             client_id=client_id, status=status)  # fmt: skip
    return Issued(access, refresh_token, uid, sid, " ".join(roles))
