"""The HTTP/1.1 protocol both services run: uvicorn's httptools one, with a bound on the
request head (the request line and every header, ``REVOCAST_MAX_HEADER_BYTES`` in all).

httptools sets no limit of its own: it gathers a header until its end, so one 100 MB
header was read whole (the sidecar went from 55 to 253 MB, and a concurrent ``/verify``
from 2 to 207 ms while it copied). Here the bytes of a head are fed to the parser only up
to the bound; a head that has not ended by then is answered 431 and never read further.

The bound travels in uvicorn's own setting for it, ``h11_max_incomplete_event_size`` (which
h11 applies to the same thing), so that uvicorn's worker processes get it with their config.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

import msgspec
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from revocast.errors import HeadersTooLarge
from revocast.settings import DEFAULT_HEADER_BYTES

# After the 431, what the client still sends is read and dropped this long before the
# connection closes: closing with unread data sends a reset, which can destroy the answer.
LINGER_S = 1.0

log = logging.getLogger("revocast.http")


def uvicorn_options(max_header_bytes: int) -> dict[str, Any]:
    """What ``uvicorn.Config`` needs to run this protocol with this bound."""
    # The class, not an import string: uvicorn before 0.36 took only its own protocols'
    # names as strings. Worker processes get it by reference with their pickled config.
    return {"http": HeadBoundProtocol, "h11_max_incomplete_event_size": max_header_bytes}


class HeadBoundProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` that feeds the parser at most the bound while a head is open.

    A head counts from the first byte after the previous message (or the connection's
    start) to the end of its headers. When a message begins inside a piece of data (after
    another one, pipelined), the whole piece counts for it: never fewer bytes than it has.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_head = self.config.h11_max_incomplete_event_size or DEFAULT_HEADER_BYTES
        self.in_head = True  # from a message's first byte to the end of its headers
        self.head_bytes = 0
        self.piece = 0  # the bytes being fed now
        self.refused = False

    def data_received(self, data: bytes) -> None:
        if self.in_head and len(data) < self.max_head - self.head_bytes:
            # Most requests: the piece fits, no head can pass the bound in it (a message
            # beginning inside counts at most the piece), and nothing is left to feed.
            self.head_bytes += len(data)
            self.piece = len(data)
            super().data_received(data)
            return
        while data and not self.refused:
            if self.in_head:
                room = self.max_head - self.head_bytes
                piece, data = data[:room], data[room:]
                self.head_bytes += len(piece)
            else:  # a body, in pieces no longer than a head, so the next head is counted
                piece, data = data[: self.max_head], data[self.max_head :]
            self.piece = len(piece)
            super().data_received(piece)
            if self.parser is None or self.transport.is_closing():
                return  # refused as malformed (400), or gone
            upgraded = self.transport.get_protocol()
            if upgraded is not self:  # a WebSocket now: what follows is its own
                if data:
                    cast(asyncio.Protocol, upgraded).data_received(data)
                return
            if self.in_head and self.head_bytes >= self.max_head:
                self.refuse_head()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.in_head = True
        self.head_bytes = self.piece

    def on_headers_complete(self) -> None:
        self.in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.in_head = True
        self.head_bytes = 0

    def refuse_head(self) -> None:
        """431 in revocast's error shape, then read and drop the rest until the close."""
        self.refused = True
        error = HeadersTooLarge(
            f"the request line and headers are over {self.max_head} bytes in all, this "
            "server's limit: send smaller headers (a token, not a cookie jar)"
        )
        body = msgspec.json.encode({"error": error.code, "detail": error.detail})
        head = [STATUS_LINE[error.status]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [b"content-type: application/json\r\n",
                 b"content-length: %d\r\n" % len(body),
                 b"connection: close\r\n\r\n"]  # fmt: skip
        self.transport.write(b"".join(head) + body)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        peer = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
        log.warning("refused a request head over %d bytes from %s (431)", self.max_head, peer)
        self.loop.call_later(LINGER_S, self.transport.close)
