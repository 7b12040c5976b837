"""Creating users: validated names and roles, argon2id hashes, random ids."""

from __future__ import annotations

import json
import re

from revocast import usernames
from revocast.errors import InvalidRequest
from revocast.ids import new_user_id
from revocast.issuer.passwords import Passwords
from revocast.store import Store

ROLE = re.compile(r"[a-z][a-z0-9_:-]{0,31}")
MIN_PASSWORD_CHARS = 8


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD_CHARS:
        raise InvalidRequest(
            f"the password is shorter than {MIN_PASSWORD_CHARS} characters: choose a longer one"
        )


async def add_user(
    store: Store,
    passwords: Passwords,
    username: str,
    password: str,
    roles: list[str],
    *,
    actor: str = "",
) -> str:
    """Create a user and return its id; Conflict if the name (in its normal form) is taken.
    An ``actor`` (the operator who adds it) is recorded in the audit trail."""
    username = usernames.check(username)
    check_password_rules(password)
    bad = [role for role in roles if not ROLE.fullmatch(role)]
    if bad:
        raise InvalidRequest(
            f"{', '.join(map(repr, bad))}: a role name is a lowercase letter, then up to 31 of "
            "a-z 0-9 _ : -"
        )
    uid = new_user_id(store.keys, username)
    await store.users.add(
        uid, username, await passwords.hash(password), json.dumps(sorted(set(roles))), actor
    )
    return uid
