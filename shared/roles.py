"""The roles revocast gives a meaning to; every other role name is the application's own.

A *service role* gives power over other accounts or over the service: blocking users and
changing roles (``admin``, ``moderator``), reading anyone's tokens (``introspect``), reading
every revocation as Shared Signals (``ssf``). Only admins and operators grant or withdraw
one, or change the roles of an account that holds one (the ``moderate`` script, whose Lua
table of them is written from ``SERVICE_ROLES``); moderators manage the other roles.
"""

from __future__ import annotations

from typing import Final

ADMIN: Final = "admin"
MODERATOR: Final = "moderator"
INTROSPECT: Final = "introspect"
SSF: Final = "ssf"

SERVICE_ROLES: Final = frozenset({ADMIN, MODERATOR, INTROSPECT, SSF})
# Actors whose names start so are operators at the CLI: all power, no revocation budget.
# The authority rule reads it in Python (revocast.store.authority) and in Lua (injected).
OPERATOR_PREFIX: Final = "cli:"
