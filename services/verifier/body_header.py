"""A refusal's JSON body, repeated in a header for gateways that drop the body.

nginx's ``auth_request`` keeps the status and headers of the sidecar's answer, never its
body. A gateway that sends ``X-Revocast-Body-In-Header`` (any value) gets the body of every
non-2xx answer of ``/verify`` also in ``X-Revocast-Body``, as one line of printable ASCII
JSON, so that it can give the client revocast's own status and JSON (``deploy/nginx.conf``).
The body says nothing the body itself does not: anyone may ask.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from starlette.types import Message, Send

ASK = b"x-revocast-body-in-header"
BODY = b"x-revocast-body"
# Every error body of the sidecar is under 400 bytes; nginx's proxy_buffer_size, which must
# hold all of an answer's headers, is 4 KiB on most systems.
MAX_BYTES = 2048


def asked(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether the request asks for the body in a header."""
    return any(name == ASK for name, _ in headers)


def header_value(body: bytes) -> bytes | None:
    """``body`` as a header value: printable ASCII JSON on one line; None if too long or not
    JSON. Non-ASCII text is escaped (``\\u00e9``): the same JSON, header-safe."""
    if len(body) <= MAX_BYTES and body.isascii() and body.decode("ascii").isprintable():
        return body
    try:
        decoded = json.loads(body)
    except ValueError:
        return None
    # ensure_ascii escapes what is not ASCII and every control character but DEL.
    text = json.dumps(decoded, ensure_ascii=True, separators=(",", ":")).replace("\x7f", "\\u007f")
    return text.encode("ascii") if len(text) <= MAX_BYTES else None


def repeating_body(send: Send) -> Send:
    """``send`` that holds back a non-2xx answer's start until its body has come, to add that
    body as ``X-Revocast-Body``. A 2xx answer, or a body sent in parts, passes unchanged."""
    held: Message | None = None

    async def relay(message: Message) -> None:
        nonlocal held
        if message["type"] == "http.response.start" and not 200 <= message["status"] < 300:
            held = message
            return
        if held is not None:
            start, held = held, None
            whole = message["type"] == "http.response.body" and not message.get("more_body")
            value = header_value(message.get("body", b"")) if whole else None
            if value is not None:
                start = {**start, "headers": [*start.get("headers", ()), (BODY, value)]}
            await send(start)
        await send(message)

    return relay
