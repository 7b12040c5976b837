"""An OpenID Shared Signals (SSF 1.0) transmitter, delivering by poll (RFC 8936) or push
(RFC 8935, ``ssf_push``).

A receiver (a bearer token with the role ``ssf`` or ``admin``) creates a stream; from then
on every revocation becomes a SET (``security_events``) it fetches from its poll endpoint.
Nothing is removed from the revocation streams for it: each SSF stream keeps a cursor per
revocation stream, moved only by the receiver's acks, so SETs it has not acknowledged are
delivered again on its next poll (a receiver that was down gets them then), in stream
order per partition (so per user). An ack acknowledges that SET and every earlier one of
the same partition. Entries older than the stream retention (``REVOCAST_ACCESS_TTL_S`` plus
about a minute) are trimmed: a receiver away longer misses them.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from revocast.errors import InvalidRequest, NotFound
from revocast.events import UnknownEvent, decode_entry
from revocast.http import json_response
from revocast.issuer.bodies import read_raw
from revocast.issuer.context import IssuerContext
from revocast.issuer.guards import caller_with_role
from revocast.issuer.security_events import SUPPORTED, VERIFICATION, describe, sign
from revocast.proof import EventRef, entry_key

SSF_ROLES = frozenset({"admin", "ssf"})
POLL = "urn:ietf:rfc:8936"
PUSH = "urn:ietf:rfc:8935"
MAX_EVENTS = 1000
LONG_POLL_S = 10.0


def _base(ctx: IssuerContext, request: Request) -> str:
    issuer = ctx.settings.issuer
    return (issuer if issuer.startswith(("https://", "http://")) else str(request.base_url)).rstrip(
        "/"
    )


async def configuration(request: Request) -> Response:
    """``/.well-known/ssf-configuration`` (SSF 1.0 §7.1)."""
    ctx = IssuerContext.of(request)
    base = _base(ctx, request)
    return json_response({
        "spec_version": "1_0",
        "issuer": ctx.settings.issuer,
        "jwks_uri": f"{base}/.well-known/jwks.json",
        "delivery_methods_supported": [PUSH, POLL],
        "configuration_endpoint": f"{base}/ssf/stream",
        "status_endpoint": f"{base}/ssf/status",
        "verification_endpoint": f"{base}/ssf/verify",
        "authorization_schemes": [{"spec_urn": "urn:ietf:rfc:6750"}],
        "default_subjects": "ALL",
    }, headers={"Cache-Control": "public, max-age=300"})  # fmt: skip


class StreamRequest(msgspec.Struct, forbid_unknown_fields=False):
    delivery: dict[str, Any] = msgspec.field(default_factory=dict)
    events_requested: list[str] = msgspec.field(default_factory=list)
    description: str = ""
    aud: str = ""


async def _body(request: Request, ctx: IssuerContext) -> bytes:
    return await read_raw(request, "application/json", ctx.settings.max_body_bytes)


def _decode(raw: bytes, kind: type[Any]) -> Any:
    try:
        return msgspec.json.decode(raw or b"{}", type=kind)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise InvalidRequest(f"body is not a valid stream request: {exc}") from None


async def create_stream(request: Request) -> Response:
    """SSF 1.0 §8.1.1.1: a poll or push stream; it delivers events written from now on."""
    ctx = IssuerContext.of(request)
    caller_with_role(ctx, request, SSF_ROLES)
    asked: StreamRequest = _decode(await _body(request, ctx), StreamRequest)
    method = asked.delivery.get("method", POLL)
    if method not in (POLL, PUSH):
        raise InvalidRequest(f"delivery method {method} is not supported ({PUSH} or {POLL})")
    unknown = [e for e in asked.events_requested if not isinstance(e, str) or len(e) > 256]
    if unknown or len(asked.events_requested) > 16 or len(asked.description) > 500:
        raise InvalidRequest("events_requested is up to 16 event type URIs")
    stream_id = f"ssf_{secrets.token_urlsafe(12)}"
    delivery = {"method": POLL, "endpoint_url": f"{_base(ctx, request)}/ssf/poll/{stream_id}"}
    if method == PUSH:
        delivery = _push_delivery(asked.delivery)
    requested = asked.events_requested or list(SUPPORTED)
    config = {
        "stream_id": stream_id,
        "iss": ctx.settings.issuer,
        "aud": asked.aud[:256] or stream_id,
        "delivery": delivery,
        "events_supported": list(SUPPORTED),
        "events_requested": requested,
        "events_delivered": [e for e in requested if e in SUPPORTED],
        "description": asked.description,
    }
    ends = {}
    for stream in ctx.reads.keys.streams():
        ends[stream.name] = await ctx.reads.last_entry(stream.name) or "0-0"
    await ctx.writes.add_ssf_stream(stream_id, json.dumps(config), ends)
    return json_response(_public(config), status=201)


def _push_delivery(asked: dict[str, Any]) -> dict[str, Any]:
    url, authorization = asked.get("endpoint_url"), asked.get("authorization_header")
    if not isinstance(url, str) or not url.startswith(("https://", "http://")) or len(url) > 2048:
        raise InvalidRequest("a push stream needs an http(s) endpoint_url")
    if authorization is not None and (
        not isinstance(authorization, str) or len(authorization) > 1024
    ):
        raise InvalidRequest("authorization_header is a string of up to 1024 characters")
    return {"method": PUSH, "endpoint_url": url, "authorization_header": authorization}


async def _stream(
    ctx: IssuerContext, stream_id: str
) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    found = await ctx.reads.ssf_stream(stream_id[:64])
    if found is None:
        raise NotFound(f"no SSF stream {stream_id}")
    config, cursors, pending = found
    return json.loads(config), cursors, pending


async def read_stream(request: Request) -> Response:
    ctx = IssuerContext.of(request)
    caller_with_role(ctx, request, SSF_ROLES)
    config, _, _ = await _stream(ctx, request.query_params.get("stream_id", ""))
    return json_response(_public(config))


def _public(config: dict[str, Any]) -> dict[str, Any]:
    """The configuration without the receiver's secret (its Authorization header)."""
    delivery = {k: v for k, v in config["delivery"].items() if k != "authorization_header"}
    return config | {"delivery": delivery}


async def delete_stream(request: Request) -> Response:
    ctx = IssuerContext.of(request)
    caller_with_role(ctx, request, SSF_ROLES)
    stream_id = request.query_params.get("stream_id", "")
    if not await ctx.writes.remove_ssf_stream(stream_id[:64]):
        raise NotFound(f"no SSF stream {stream_id}")
    return Response(status_code=204)


async def status(request: Request) -> Response:
    ctx = IssuerContext.of(request)
    caller_with_role(ctx, request, SSF_ROLES)
    config, _, _ = await _stream(ctx, request.query_params.get("stream_id", ""))
    return json_response({"stream_id": config["stream_id"], "status": "enabled"})


class VerifyRequest(msgspec.Struct):
    stream_id: str
    state: str = ""


async def verify(request: Request) -> Response:
    """SSF 1.0 §8.1.4.2: a verification SET, delivered with the next poll."""
    ctx = IssuerContext.of(request)
    caller_with_role(ctx, request, SSF_ROLES)
    asked: VerifyRequest = _decode(await _body(request, ctx), VerifyRequest)
    config, _, _ = await _stream(ctx, asked.stream_id)
    jti = f"verify.{secrets.token_urlsafe(12)}"
    body = {"state": asked.state[:256]} if asked.state else {}
    subject = {"format": "opaque", "id": config["stream_id"]}
    token = await sign(ctx, jti=jti, audience=config["aud"], event_type=VERIFICATION,
                       body=body, subject=subject)  # fmt: skip
    await ctx.writes.queue_ssf_set(config["stream_id"], json.dumps([jti, token]))
    return Response(status_code=204)


class PollRequest(msgspec.Struct):
    ack: list[str] = msgspec.field(default_factory=list)
    maxEvents: int = 100  # RFC 8936 names it so
    returnImmediately: bool = True
    setErrs: dict[str, Any] = msgspec.field(default_factory=dict)


async def poll(request: Request) -> Response:
    """RFC 8936: ack what was received, then get the SETs after the cursors."""
    ctx = IssuerContext.of(request)
    caller_with_role(ctx, request, SSF_ROLES)
    stream_id = str(request.path_params["stream_id"])
    asked: PollRequest = _decode(await _body(request, ctx), PollRequest)
    if not 0 <= asked.maxEvents <= MAX_EVENTS or len(asked.ack) > MAX_EVENTS:
        raise InvalidRequest(f"maxEvents and ack hold up to {MAX_EVENTS}")
    config, _, _ = await _stream(ctx, stream_id)
    if config["delivery"]["method"] != POLL:
        raise InvalidRequest(f"stream {stream_id} delivers by push")
    await record_ack(ctx, stream_id, asked.ack + list(asked.setErrs))
    deadline = time.monotonic() + (0 if asked.returnImmediately else LONG_POLL_S)
    while True:
        sets, more = await next_sets(ctx, config, stream_id, asked.maxEvents)
        if sets or asked.maxEvents == 0 or time.monotonic() >= deadline:
            return json_response({"sets": sets, "moreAvailable": more},
                                 headers={"Cache-Control": "no-store"})  # fmt: skip
        await asyncio.sleep(0.1)


async def record_ack(ctx: IssuerContext, stream_id: str, acks: list[str]) -> None:
    """The receiver has these SETs: move its cursors past them, drop them from pending."""
    found = await ctx.reads.ssf_stream(stream_id)
    pending = found[2] if found is not None else []
    cursors: dict[str, str] = {}
    for jti in acks:
        try:
            event = EventRef.parse(jti)
        except ValueError:
            continue  # a verification SET, or not one of ours
        if event.stream not in cursors or entry_key(event.entry_id) > entry_key(
            cursors[event.stream]
        ):
            cursors[event.stream] = event.entry_id
    dropped = [entry for entry in pending if json.loads(entry)[0] in set(acks)]
    if cursors or dropped:
        await ctx.writes.ack_ssf(stream_id, cursors, dropped)


async def next_sets(
    ctx: IssuerContext, config: dict[str, Any], stream_id: str, limit: int
) -> tuple[dict[str, str], bool]:
    """Up to ``limit`` SETs: pending ones, then each revocation stream's entries after its
    cursor; whether more are waiting."""
    found = await ctx.reads.ssf_stream(stream_id)
    if found is None:
        raise NotFound(f"no SSF stream {stream_id}")
    _, cursors, pending = found
    sets: dict[str, str] = {}
    for entry in pending[:limit]:
        jti, token = json.loads(entry)
        sets[jti] = token
    more = len(pending) > limit
    wanted = set(config["events_delivered"])
    skipped: dict[str, str] = {}  # entries no SET is made of, ahead of any that is
    for name, cursor in sorted(cursors.items()):
        if len(sets) >= limit:
            more = True
            break
        entries = await ctx.reads.events_after(name, cursor, limit - len(sets) + 1)
        more = more or len(entries) > limit - len(sets)
        leading = True
        for entry_id, fields in entries[: limit - len(sets)]:
            made = await _set_for(ctx, config, name, entry_id, fields, wanted)
            if made is not None:
                sets[made[0]] = made[1]
                leading = False
            elif leading:
                skipped[name] = entry_id
    if skipped:  # never delivered to this stream: step over them, or they would block it
        await ctx.writes.ack_ssf(stream_id, skipped, [])
    return sets, more


async def _set_for(
    ctx: IssuerContext,
    config: dict[str, Any],
    stream: str,
    entry_id: str,
    fields: dict[str, str],
    wanted: set[str],
) -> tuple[str, str] | None:
    try:
        described = await describe(ctx, decode_entry(fields))
    except UnknownEvent:
        return None
    if described is None or described[0] not in wanted:
        return None
    event_type, body, subject = described
    jti = str(EventRef.of(stream, entry_id))
    token = await sign(ctx, jti=jti, audience=config["aud"], event_type=event_type,
                       body=body, subject=subject)  # fmt: skip
    return jti, token
