"""The ``revocast`` command (``revocast.cli:main``, ``python -m revocast``).

It sits on top of both services, so it lives beside them, not in the foundation
(``revocast``, which imports neither): ``commands`` parses and runs the commands,
``serving`` runs a service under uvicorn.
"""

from __future__ import annotations

from revocast.cli.commands import main, parser, port_argument, preflight

__all__ = ["main", "parser", "port_argument", "preflight"]
