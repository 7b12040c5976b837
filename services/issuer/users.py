"""Creating users: validated names and roles, argon2id hashes, random ids."""

from __future__ import annotations

import json
import re

from revocast.errors import InvalidRequest
from revocast.ids import new_user_id
from revocast.issuer.passwords import Passwords
from revocast.store import Writes

USERNAME = re.compile(r"[A-Za-z0-9._@+-]{1,64}")
ROLE = re.compile(r"[a-z][a-z0-9_:-]{0,31}")
MIN_PASSWORD_CHARS = 8


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD_CHARS:
        raise InvalidRequest(f"password: at least {MIN_PASSWORD_CHARS} characters")


async def add_user(
    writes: Writes, passwords: Passwords, username: str, password: str, roles: list[str]
) -> str:
    """Create a user and return its id; Conflict if the name is taken."""
    if not USERNAME.fullmatch(username):
        raise InvalidRequest("username: 1-64 of letters, digits and . _ @ + -")
    check_password_rules(password)
    bad = [role for role in roles if not ROLE.fullmatch(role)]
    if bad:
        raise InvalidRequest(f"invalid role names: {bad}")
    uid = new_user_id(writes.keys, username)
    await writes.add_user(
        uid, username, await passwords.hash(password), json.dumps(sorted(set(roles)))
    )
    return uid
