"""Reading a revocation stream's entries as they are written (the tests' view of it)."""

from __future__ import annotations

from typing import cast

from revocast.store import Backend

Entry = tuple[str, dict[str, str]]


async def entries(backend: Backend, stream: str) -> list[Entry]:
    """Every entry of ``stream``, oldest first (the client decodes replies)."""
    return cast(list[Entry], await backend.on_reader(stream, lambda c: c.xrange(stream)))
