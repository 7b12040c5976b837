"""The login as it ran before issue 21, point 5, for ``bench.login_round_trips`` alone: the
same scripts, awaited one after another.

The address's count, then the username's count with the lookup, the password check, then
the active key (a GET), then, under a session limit, the user's session ids (SMEMBERS),
then the login script: four round trips without a session limit, five with one. The name's
user id comes from the issuer's memory, as it did for a name seen before (a cold name cost
one more). Nothing in the runtime calls this.
"""

from __future__ import annotations

import dataclasses
import json

from revocast import usernames
from revocast.clients import DEFAULT_CLIENT_ID
from revocast.errors import InvalidCredentials
from revocast.ids import new_refresh_token, new_session_id
from revocast.issuer.context import IssuerContext
from revocast.issuer.grants import signing_kid


async def password_grant(
    ctx: IssuerContext, *, username: str, password: str, address: str, user_agent: str
) -> str:
    """A login the old way; its access token."""
    username = usernames.normalize(username)
    ctx.passwords.refuse_when_full()
    logins = ctx.store.sessions.throttle
    await logins.count_client(address)
    attempt = await logins.attempt(username, address)
    attempt = dataclasses.replace(attempt, sessions=None)  # the old script read none
    if not await ctx.passwords.verify(attempt.password_hash or None, password) or not attempt.uid:
        raise InvalidCredentials()
    uid = attempt.uid
    kid = await signing_kid(ctx)
    sid = new_session_id(ctx.store.keys, uid)
    refresh_token = new_refresh_token(ctx.store.keys, uid)
    issued_ms, roles_json, status_idx = await ctx.store.sessions.login(
        uid, sid, refresh_token, attempt=attempt, user_agent=user_agent, client=address
    )
    return ctx.minter.mint(uid=uid, sid=sid, roles=json.loads(roles_json), issued_ms=issued_ms,
                           kid=kid, client_id=DEFAULT_CLIENT_ID,
                           status=(ctx.store.keys.of(sid).index, status_idx))  # fmt: skip
