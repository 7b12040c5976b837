"""The issuer service: authenticates users, mints tokens, publishes revocations."""

from __future__ import annotations

from revocast.issuer.app import create_app

__all__ = ["create_app"]
