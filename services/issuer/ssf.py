"""An OpenID Shared Signals (SSF 1.0) transmitter, delivering by poll (RFC 8936) or push
(RFC 8935, ``ssf_push``).

A receiver (a bearer token with the role ``ssf`` or ``admin``) creates a stream; from then
on every revocation becomes a SET (``security_events``), pushed to it or fetched from its
poll endpoint. The issuers copy each revocation into the stream's own queue within about
200 ms (the revocation streams are trimmed after about an access-token lifetime, the queue
is not), and a SET leaves the queue only once the receiver has it: acknowledged by a poll,
or answered 2xx to a push. So a receiver that is down gets everything when it is back, in
order. The queue holds up to ``REVOCAST_SSF_MAX_QUEUE`` events (100,000); past that, copying
pauses and resumes where it paused, and what the revocation streams trim meanwhile is told
to the receiver, never lost silently (``ssf_spool``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from typing import Any

import httpx
import msgspec
from starlette.requests import Request
from starlette.responses import Response

from revocast.claims import AccessClaims
from revocast.errors import Conflict, InvalidRequest, NotFound
from revocast.http import json_response
from revocast.issuer.bodies import decode_body, read_raw
from revocast.issuer.context import IssuerContext
from revocast.issuer.guards import caller_with_role
from revocast.issuer.metadata import cache_control, public_base
from revocast.issuer.security_events import SUPPORTED, VERIFICATION, sign
from revocast.issuer.ssf_spool import spool, start_cursors, status_reason
from revocast.issuer.ssf_targets import RefusedTarget, TargetPolicy
from revocast.keys import JWKS_CACHE_CONTROL
from revocast.settings import MAX_SSF_STREAMS

log = logging.getLogger("revocast.issuer")

SSF_ROLES = frozenset({"admin", "ssf"})
POLL = "urn:ietf:rfc:8936"
PUSH = "urn:ietf:rfc:8935"
MAX_EVENTS = 1000
MAX_STREAMS = MAX_SSF_STREAMS
LONG_POLL_S = 10.0


async def configuration(request: Request) -> Response:
    """``/.well-known/ssf-configuration`` (SSF 1.0 §7.1)."""
    ctx = IssuerContext.of(request)
    base = public_base(ctx, request)
    return json_response({
        "spec_version": "1_0",
        "issuer": ctx.settings.tokens.issuer,
        "jwks_uri": f"{base}/ssf/jwks.json",  # the SET keys, never the access tokens'
        "delivery_methods_supported": [PUSH, POLL],
        "configuration_endpoint": f"{base}/ssf/stream",
        "status_endpoint": f"{base}/ssf/status",
        "verification_endpoint": f"{base}/ssf/verify",
        "authorization_schemes": [{"spec_urn": "urn:ietf:rfc:6750"}],
        "default_subjects": "ALL",
    }, headers={"Cache-Control": cache_control(ctx)})  # fmt: skip


async def jwks(request: Request) -> Response:
    """The keys SETs are signed with: the SSF configuration's ``jwks_uri``. They are never in
    ``/.well-known/jwks.json``, the access tokens' keys, so a verifier of access tokens never
    trusts them."""
    ctx = IssuerContext.of(request)
    held = ctx.minter.keyring.set_keys(sorted(await ctx.store.signing.jwks()))
    return json_response({"keys": [key.public.jwk for key in held]},
                         headers={"Cache-Control": JWKS_CACHE_CONTROL})  # fmt: skip


class StreamRequest(msgspec.Struct, forbid_unknown_fields=False):
    delivery: dict[str, Any] = msgspec.field(default_factory=dict)
    events_requested: list[str] = msgspec.field(default_factory=list)
    description: str = ""
    aud: str = ""


async def _body(request: Request, ctx: IssuerContext) -> bytes:
    return await read_raw(request, "application/json", ctx.settings.http.max_body_bytes)


def _decode(raw: bytes, kind: type[Any]) -> Any:
    return decode_body(raw, kind, optional=True)  # strictly: no repeated names, no deep nesting


async def create_stream(request: Request) -> Response:
    """SSF 1.0 §8.1.1.1: a poll or push stream; it delivers events written from now on."""
    ctx = IssuerContext.of(request)
    caller = caller_with_role(ctx, request, SSF_ROLES)
    asked: StreamRequest = _decode(await _body(request, ctx), StreamRequest)
    method = asked.delivery.get("method", POLL)
    if method not in (POLL, PUSH):
        raise InvalidRequest(f"delivery method {method} is not supported: use {PUSH} or {POLL}")
    _check_audience(ctx, asked.aud)
    unknown = [e for e in asked.events_requested if not isinstance(e, str) or len(e) > 256]
    if unknown or len(asked.events_requested) > 16 or len(asked.description) > 500:
        raise InvalidRequest(
            "events_requested takes up to 16 event type URIs of up to 256 characters, and "
            "description up to 500 characters: send fewer or shorter ones"
        )
    stream_id = f"ssf_{secrets.token_urlsafe(12)}"
    delivery = {"method": POLL, "endpoint_url": f"{public_base(ctx, request)}/ssf/poll/{stream_id}"}
    if method == PUSH:
        delivery = await _push_delivery(ctx, asked.delivery, caller.sub)
    requested = asked.events_requested or list(SUPPORTED)
    config = {
        "stream_id": stream_id,
        "owner": caller.sub,
        "iss": ctx.settings.tokens.issuer,
        "aud": asked.aud or stream_id,
        "delivery": delivery,
        "events_supported": list(SUPPORTED),
        "events_requested": requested,
        "events_delivered": [e for e in requested if e in SUPPORTED],
        "description": asked.description,
    }
    cursors = await start_cursors(ctx)
    cap = ctx.settings.ssf.ssf_max_streams_per_owner
    added = await ctx.store.signals.add_ssf_stream(
        stream_id, json.dumps(config), cursors,
        owner=caller.sub, max_streams=MAX_STREAMS, max_per_owner=cap,
    )  # fmt: skip
    if added == "owner_full":
        raise Conflict(f"this account holds {cap} SSF streams, its limit "
                       "(REVOCAST_SSF_MAX_STREAMS_PER_OWNER): delete one first")  # fmt: skip
    if added == "deployment_full":
        raise Conflict(f"this deployment holds {MAX_STREAMS} SSF streams, its limit: delete one")
    where = httpx.URL(delivery["endpoint_url"]).host if method == PUSH else "poll"
    log.info("ssf stream %s created by %s: %s", stream_id, caller.sub, where)
    return json_response(_public(config), status=201)


def _check_audience(ctx: IssuerContext, aud: str) -> None:
    """A stream's ``aud`` is the receiver's name, never the audience access tokens are minted
    for: a SET for it would carry the API's ``aud`` (SSF 1.0 makes ``aud`` the
    transmitter's choice; revocast lets the receiver name itself, within these bounds)."""
    if len(aud) > 256:
        raise InvalidRequest("aud takes up to 256 characters: send a shorter receiver name")
    if aud == ctx.settings.tokens.audience:
        raise InvalidRequest(
            "aud is the audience of this issuer's access tokens (REVOCAST_AUDIENCE): a SET "
            "must never name it; use the receiver's own identifier, e.g. its URL"
        )


async def _push_delivery(ctx: IssuerContext, asked: dict[str, Any], caller: str) -> dict[str, Any]:
    """The push target, checked: https in production (the Authorization header travels with
    each SET), a URL httpx can use whose host resolves only to addresses push delivery may
    connect to (``ssf_targets``; checked again at every connection), an ASCII header."""
    url, authorization = asked.get("endpoint_url"), asked.get("authorization_header")
    production = ctx.settings.deployment.environment == "production"
    schemes = ("https://",) if production else ("https://", "http://")
    if not isinstance(url, str) or not url.startswith(schemes) or len(url) > 2048:
        raise InvalidRequest(f"a push stream needs an endpoint_url starting {' or '.join(schemes)}")
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        raise InvalidRequest("endpoint_url is not a valid URL") from None
    if not parsed.host or parsed.userinfo:
        raise InvalidRequest("endpoint_url needs a host and no user:password@ part")
    try:
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        await TargetPolicy.from_settings(ctx.settings).resolve(parsed.host, port)
    except RefusedTarget as exc:
        log.warning("ssf stream refused to %s: push target %s", caller, exc)
        raise InvalidRequest(
            f"endpoint_url refused: {exc}; push delivery connects only to public addresses "
            "(an operator can allow networks with REVOCAST_SSF_ALLOWED_NETWORKS)"
        ) from None
    if isinstance(authorization, str) and not authorization.isascii():
        raise InvalidRequest("authorization_header must be ASCII")
    if authorization is not None and (
        not isinstance(authorization, str) or len(authorization) > 1024
    ):
        raise InvalidRequest("authorization_header is a string of up to 1024 characters")
    return {"method": PUSH, "endpoint_url": url, "authorization_header": authorization}


def _no_stream(stream_id: str) -> NotFound:
    if not stream_id:
        return NotFound("stream_id is missing: send the one the stream's creation answered")
    return NotFound(f"no SSF stream {stream_id[:64]}: use the stream_id its creation answered")


async def _stream(
    ctx: IssuerContext, stream_id: str, caller: AccessClaims | None = None
) -> dict[str, Any]:
    """The stream's configuration; another receiver's stream is not found (admins see all)."""
    found = await ctx.store.signals.ssf_stream(stream_id[:64])
    if found is None:
        raise _no_stream(stream_id)
    config: dict[str, Any] = json.loads(found[0])
    if caller is not None and "admin" not in caller.roles and config.get("owner") != caller.sub:
        raise _no_stream(stream_id)
    return config


async def read_stream(request: Request) -> Response:
    ctx = IssuerContext.of(request)
    caller = caller_with_role(ctx, request, SSF_ROLES)
    config = await _stream(ctx, request.query_params.get("stream_id", ""), caller)
    return json_response(_public(config))


def _public(config: dict[str, Any]) -> dict[str, Any]:
    """The configuration without the receiver's secret (its Authorization header)."""
    delivery = {k: v for k, v in config["delivery"].items() if k != "authorization_header"}
    return {k: v for k, v in config.items() if k != "owner"} | {"delivery": delivery}


async def delete_stream(request: Request) -> Response:
    ctx = IssuerContext.of(request)
    caller = caller_with_role(ctx, request, SSF_ROLES)
    stream_id = request.query_params.get("stream_id", "")
    await _stream(ctx, stream_id, caller)
    if not await ctx.store.signals.remove_ssf_stream(stream_id[:64]):
        raise _no_stream(stream_id)
    log.info("ssf stream %s deleted by %s", stream_id[:64], caller.sub)
    return Response(status_code=204)


async def status(request: Request) -> Response:
    ctx = IssuerContext.of(request)
    caller = caller_with_role(ctx, request, SSF_ROLES)
    config = await _stream(ctx, request.query_params.get("stream_id", ""), caller)
    answer = {"stream_id": config["stream_id"], "status": "enabled"}
    reason = status_reason(await ctx.store.signals.ssf_status(config["stream_id"]),
                           ctx.settings.ssf.ssf_max_queue)  # fmt: skip
    return json_response(answer | ({"reason": reason} if reason else {}))


class VerifyRequest(msgspec.Struct):
    stream_id: str
    state: str = ""


async def verify(request: Request) -> Response:
    """SSF 1.0 §8.1.4.2: a verification SET, queued behind the events already there."""
    ctx = IssuerContext.of(request)
    caller = caller_with_role(ctx, request, SSF_ROLES)
    asked: VerifyRequest = _decode(await _body(request, ctx), VerifyRequest)
    config = await _stream(ctx, asked.stream_id, caller)
    found = await ctx.store.signals.ssf_stream(config["stream_id"])
    if found is not None and found[2] >= ctx.settings.ssf.ssf_max_queue:
        raise InvalidRequest("the stream's queue is full: poll and acknowledge first")
    jti = f"verify.{secrets.token_urlsafe(12)}"
    body = {"state": asked.state[:256]} if asked.state else {}
    subject = {"format": "opaque", "id": config["stream_id"]}
    entry = {"jti": jti, "type": VERIFICATION, "body": body, "subject": subject}
    await ctx.store.signals.queue_ssf_set(config["stream_id"], json.dumps(entry))
    return Response(status_code=204)


class PollRequest(msgspec.Struct):
    ack: list[str] = msgspec.field(default_factory=list)
    maxEvents: int = 100  # RFC 8936 names it so
    returnImmediately: bool = False  # RFC 8936 §2.4: a long poll unless asked
    setErrs: dict[str, Any] = msgspec.field(default_factory=dict)


async def poll(request: Request) -> Response:
    """RFC 8936: ack what was received, then get the SETs after the cursors."""
    ctx = IssuerContext.of(request)
    caller = caller_with_role(ctx, request, SSF_ROLES)
    stream_id = str(request.path_params["stream_id"])
    asked: PollRequest = _decode(await _body(request, ctx), PollRequest)
    if not 0 <= asked.maxEvents <= MAX_EVENTS or len(asked.ack) > MAX_EVENTS:
        raise InvalidRequest(f"maxEvents and ack take up to {MAX_EVENTS} each: ask for fewer")
    config = await _stream(ctx, stream_id, caller)
    if config["delivery"]["method"] != POLL:
        raise InvalidRequest(
            f"stream {stream_id} delivers by push, not poll: its events go to its endpoint_url"
        )
    await record_ack(ctx, stream_id, asked.ack + list(asked.setErrs))
    deadline = time.monotonic() + (0 if asked.returnImmediately else LONG_POLL_S)
    await spool(ctx, config, stream_id)
    while True:
        found = await queued_sets(ctx, config, stream_id, asked.maxEvents + 1)
        sets = {json.loads(raw)["jti"]: token for raw, token in found[: asked.maxEvents]}
        more = len(found) > asked.maxEvents
        if sets or asked.maxEvents == 0 or time.monotonic() >= deadline:
            return json_response({"sets": sets, "moreAvailable": more},
                                 headers={"Cache-Control": "no-store"})  # fmt: skip
        await asyncio.sleep(0.1)


async def record_ack(ctx: IssuerContext, stream_id: str, acks: list[str]) -> None:
    """The receiver has these SETs (by ``jti``): drop them from its queue."""
    if not acks:
        return
    wanted = set(acks)
    queued = await ctx.store.signals.ssf_queue(stream_id, MAX_EVENTS * 2)
    done = [entry for entry in queued if json.loads(entry)["jti"] in wanted]
    if done:
        await ctx.store.signals.ack_ssf(stream_id, done)


async def queued_sets(
    ctx: IssuerContext, config: dict[str, Any], stream_id: str, limit: int
) -> list[tuple[str, str]]:
    """The first ``limit`` entries of the stream's queue, each with its SET signed now."""
    made = []
    # A stream made before its audience was checked may name the access tokens' audience:
    # its SETs then name the stream, whatever it asked for.
    audience = config["aud"] if config["aud"] != ctx.settings.tokens.audience else stream_id
    for raw in await ctx.store.signals.ssf_queue(stream_id, limit):
        event = json.loads(raw)
        token = await sign(ctx, jti=event["jti"], audience=audience,
                           event_type=event["type"], body=event["body"],
                           subject=event["subject"])  # fmt: skip
        made.append((raw, token))
    return made
