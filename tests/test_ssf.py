"""The SSF transmitter by poll (issue 12, point 3 in part): revocations as SETs a receiver
polls (RFC 8936), signed with revocast's SET key (checked here with joserfc and the SSF
JWKS, not revocast's code), in order, and delivered again until acknowledged."""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

import jwt as pyjwt
import pytest
from joserfc import jwt as joserfc_jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import KeySet
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from revocast.settings import Settings
from tests.conftest import PASSWORD, Issuer, bearer
from tests.support.servers import eventually, serve

CAEP = "https://schemas.openid.net/secevent/caep/event-type/"
RISC = "https://schemas.openid.net/secevent/risc/event-type/"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The push receivers here listen on 127.0.0.1, which push delivery refuses unless an
    operator allows it (tests/test_ssf_targets.py): allowed here."""
    return settings.with_overrides(ssf_allowed_networks=("127.0.0.1/32",))


async def receiver(issuer: Issuer) -> tuple[dict[str, str], dict[str, Any]]:
    """A receiver's credentials (role ssf) and a new poll stream."""
    await issuer.add_user("receiver", ["ssf"])
    auth = bearer(await issuer.login("receiver"))
    reply = await issuer.http.post("/ssf/stream", headers=auth,
                                   json={"delivery": {"method": "urn:ietf:rfc:8936"},
                                         "aud": "https://rp.example"})  # fmt: skip
    assert reply.status_code == 201, reply.text
    return auth, reply.json()


async def poll(
    issuer: Issuer, auth: dict[str, str], stream: dict[str, Any], **body: Any
) -> dict[str, Any]:
    body.setdefault("returnImmediately", True)  # RFC 8936's default is a long poll
    reply = await issuer.http.post(stream["delivery"]["endpoint_url"], headers=auth, json=body)
    assert reply.status_code == 200, reply.text
    answer: dict[str, Any] = reply.json()
    return answer


async def checked(issuer: Issuer, sets: dict[str, str]) -> list[dict[str, Any]]:
    """Each SET verified with joserfc and the SSF configuration's JWKS; their claims, in jti
    order."""
    meta = (await issuer.http.get("/.well-known/ssf-configuration")).json()
    jwks = (await issuer.http.get(meta["jwks_uri"])).json()
    claims = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)  # joserfc on the EdDSA name
        keys = KeySet.import_key_set(jwks)
        for jti, token in sets.items():
            decoded = joserfc_jwt.decode(token, keys, algorithms=["EdDSA", "Ed25519"])
            assert decoded.header["typ"] == "secevent+jwt"
            assert decoded.claims["jti"] == jti
            claims.append(decoded.claims)
    return claims


async def test_revocations_arrive_as_signed_sets_in_order(issuer: Issuer) -> None:
    auth, stream = await receiver(issuer)
    await issuer.add_user("mod", ["moderator"])
    mod = bearer(await issuer.login("mod"))
    alice = await issuer.add_user("alice", ["user"])
    first, second = await issuer.login("alice"), await issuer.login("alice")
    await issuer.post_bearer("/v1/logout", first["access_token"])
    third = await issuer.login("alice")
    same = {"current_password": PASSWORD, "new_password": PASSWORD}
    await issuer.http.post("/v1/password", headers=bearer(third), json=same)
    await issuer.http.put(f"/v1/admin/users/{alice}/roles", headers=mod, json={"roles": ["x"]})
    await issuer.http.post(f"/v1/admin/users/{alice}/block", headers=mod)

    answer = await poll(issuer, auth, stream, returnImmediately=True)
    assert answer["moreAvailable"] is False
    claims = await checked(issuer, answer["sets"])
    kinds = [next(iter(c["events"])) for c in claims]
    assert kinds == [CAEP + "session-revoked", CAEP + "credential-change",
                     CAEP + "token-claims-change", RISC + "account-disabled"]  # fmt: skip
    assert all(c["iss"] == issuer.settings.tokens.issuer and c["aud"] == "https://rp.example"
               for c in claims)  # fmt: skip
    logout = claims[0]["sub_id"]
    assert logout["user"] == {
        "format": "iss_sub",
        "iss": issuer.settings.tokens.issuer,
        "sub": alice,
    }
    assert logout["session"] == {"format": "opaque", "id": first["session_id"]}
    assert claims[1]["sub_id"]["session"]["id"] == second["session_id"]
    assert claims[2]["events"][CAEP + "token-claims-change"]["claims"] == {"roles": ["x"]}
    assert claims[3]["sub_id"] == {"format": "iss_sub", "iss": issuer.settings.tokens.issuer,
                                   "sub": alice}  # fmt: skip


async def test_unacknowledged_sets_come_again_and_acks_move_on(issuer: Issuer) -> None:
    """A receiver that was down (or lost a reply) gets every SET it did not acknowledge."""
    auth, stream = await receiver(issuer)
    await issuer.add_user("alice")
    for _ in range(3):
        await issuer.post_bearer("/v1/logout", (await issuer.login("alice"))["access_token"])
    once = await poll(issuer, auth, stream, maxEvents=2)
    assert (len(once["sets"]), once["moreAvailable"]) == (2, True)
    again = await poll(issuer, auth, stream, maxEvents=10)
    assert list(again["sets"])[:2] == list(once["sets"])  # the same, nothing lost
    assert len(again["sets"]) == 3
    acked = await poll(issuer, auth, stream, ack=list(again["sets"]), maxEvents=10)
    assert acked["sets"] == {}
    await issuer.post_bearer("/v1/logout", (await issuer.login("alice"))["access_token"])
    assert len((await poll(issuer, auth, stream))["sets"]) == 1


async def test_a_long_poll_returns_when_a_revocation_is_written(issuer: Issuer) -> None:
    auth, stream = await receiver(issuer)
    await issuer.add_user("alice")
    tokens = await issuer.login("alice")
    waiting = asyncio.create_task(poll(issuer, auth, stream, returnImmediately=False))
    await asyncio.sleep(0.3)
    assert not waiting.done()
    await issuer.post_bearer("/v1/logout", tokens["access_token"])
    answer = await asyncio.wait_for(waiting, 5)
    assert len(answer["sets"]) == 1


async def test_verification_status_and_the_stream_lifecycle(issuer: Issuer) -> None:
    auth, stream = await receiver(issuer)
    stream_id = stream["stream_id"]
    meta = (await issuer.http.get("/.well-known/ssf-configuration")).json()
    assert meta["delivery_methods_supported"] == ["urn:ietf:rfc:8935", "urn:ietf:rfc:8936"]
    assert meta["configuration_endpoint"].endswith("/ssf/stream")
    status = await issuer.http.get(f"/ssf/status?stream_id={stream_id}", headers=auth)
    assert status.json() == {"stream_id": stream_id, "status": "enabled"}
    asked = {"stream_id": stream_id, "state": "s-42"}
    assert (await issuer.http.post("/ssf/verify", headers=auth, json=asked)).status_code == 204
    answer = await poll(issuer, auth, stream)
    (claims,) = await checked(issuer, answer["sets"])
    verification = claims["events"][
        "https://schemas.openid.net/secevent/ssf/event-type/verification"
    ]
    assert verification == {"state": "s-42"}
    assert (await poll(issuer, auth, stream, ack=list(answer["sets"])))["sets"] == {}
    read = await issuer.http.get(f"/ssf/stream?stream_id={stream_id}", headers=auth)
    assert read.json()["events_delivered"]
    assert (await issuer.http.delete(f"/ssf/stream?stream_id={stream_id}",
                                     headers=auth)).status_code == 204  # fmt: skip
    gone = await issuer.http.post(stream["delivery"]["endpoint_url"], headers=auth, json={})
    assert gone.status_code == 404


async def test_who_may_receive_and_bad_requests(issuer: Issuer) -> None:
    auth, stream = await receiver(issuer)
    await issuer.add_user("alice")
    user = bearer(await issuer.login("alice"))
    refused = await issuer.http.post("/ssf/stream", headers=user, json={})
    assert (refused.status_code, refused.json()["error"]) == (403, "insufficient_scope")
    assert (await issuer.http.post("/ssf/stream", json={})).status_code == 401
    for delivery in ({"method": "urn:ietf:rfc:8935"},  # push, but no endpoint
                     {"method": "urn:ietf:rfc:8935", "endpoint_url": "ftp://x"},
                     {"method": "urn:ietf:rfc:8935", "endpoint_url": "http://[::1"},
                     {"method": "urn:ietf:rfc:8935", "endpoint_url": "http://x/e",
                      "authorization_header": "Bearer é"},
                     {"method": "email"}):  # fmt: skip
        bad = await issuer.http.post("/ssf/stream", headers=auth, json={"delivery": delivery})
        assert (bad.status_code, bad.json()["error"]) == (400, "invalid_request"), delivery
    url = stream["delivery"]["endpoint_url"]
    for body in ({"maxEvents": 5000}, {"ack": "x"}, {"maxEvents": "ten"}):
        reply = await issuer.http.post(url, headers=auth, json=body)
        assert reply.status_code == 400, body
    unknown = await issuer.http.post("/ssf/poll/ssf_nope", headers=auth, json={})
    assert unknown.status_code == 404
    await issuer.add_user("other", ["ssf"])
    other = bearer(await issuer.login("other"))  # another receiver: not its stream
    stolen = await issuer.http.post(url, headers=other, json={"returnImmediately": True})
    assert stolen.status_code == 404
    deleted = await issuer.http.delete(f"/ssf/stream?stream_id={stream['stream_id']}",
                                       headers=other)  # fmt: skip
    assert deleted.status_code == 404
    assert "owner" not in stream


# Push (RFC 8935) ---------------------------------------------------------------------------


class Receiver:
    """A push receiver: keeps what it accepts; answers 503 while ``down``."""

    def __init__(self) -> None:
        self.received: list[str] = []
        self.down = False
        self.refused = 0

    def app(self) -> Starlette:
        async def events(request: Request) -> Response:
            if request.headers.get("authorization") != "Bearer r-secret":
                return JSONResponse({"err": "authentication_failed"}, status_code=401)
            if self.down:
                self.refused += 1
                return Response(status_code=503 if self.refused % 2 else 401)
            assert request.headers["content-type"] == "application/secevent+jwt"
            self.received.append((await request.body()).decode())
            return Response(status_code=202)

        return Starlette(routes=[Route("/events", events, methods=["POST"])])


async def test_push_delivers_in_order_and_nothing_is_lost_while_the_receiver_is_down(
    issuer: Issuer,
) -> None:
    await issuer.add_user("receiver", ["ssf"])
    auth = bearer(await issuer.login("receiver"))
    await issuer.add_user("alice")
    receiver = Receiver()
    async with serve(receiver.app()) as url:
        delivery = {"method": "urn:ietf:rfc:8935", "endpoint_url": f"{url}/events",
                    "authorization_header": "Bearer r-secret"}  # fmt: skip
        created = await issuer.http.post("/ssf/stream", headers=auth, json={"delivery": delivery})
        assert created.status_code == 201, created.text
        assert "authorization_header" not in created.json()["delivery"]  # never shown again

        await issuer.post_bearer("/v1/logout", (await issuer.login("alice"))["access_token"])
        await eventually(lambda: len(receiver.received) == 1, timeout_s=5, every_s=0.05)

        receiver.down = True
        sessions = [await issuer.login("alice") for _ in range(3)]
        for tokens in sessions:
            await issuer.post_bearer("/v1/logout", tokens["access_token"])
        # Retried, 503 and 401 alike (a 401 must not empty the queue):
        await eventually(lambda: receiver.refused >= 3, timeout_s=8, every_s=0.05)
        assert len(receiver.received) == 1
        receiver.down = False
        await eventually(lambda: len(receiver.received) == 4, timeout_s=10, every_s=0.05)

    received = {str(pyjwt.decode(t, options={"verify_signature": False})["jti"]): t
                for t in receiver.received}  # fmt: skip
    claims = await checked(issuer, received)
    sids = [c["sub_id"]["session"]["id"] for c in claims[1:]]
    assert sids == [tokens["session_id"] for tokens in sessions]  # in order, each once
    jtis = [c["jti"] for c in claims]
    assert len(set(jtis)) == 4


async def test_queued_events_outlive_the_trimmed_revocation_stream(issuer: Issuer) -> None:
    """The issuers copy each revocation into the stream's queue within ~200 ms; a receiver
    away for longer than the revocation streams keep entries still gets them (trimming is
    done here by hand, as an hour of downtime would)."""
    auth, stream = await receiver(issuer)
    uid = await issuer.add_user("alice")
    for _ in range(3):
        await issuer.post_bearer("/v1/logout", (await issuer.login("alice"))["access_token"])

    async def queued() -> bool:
        found = await issuer.ctx.store.signals.ssf_stream(stream["stream_id"])
        return found is not None and found[2] == 3

    await eventually(queued, timeout_s=5, every_s=0.05)
    events = issuer.ctx.store.keys.of(uid).stream.events
    await issuer.ctx.backend.on_primary(events, lambda c: c.xtrim(events, maxlen=0))
    answer = await poll(issuer, auth, stream, maxEvents=10)
    assert len(answer["sets"]) == 3


BAD_BODIES = [b"", b"[]", b"{", b'{"delivery": []}', b'{"events_requested": [1]}',
              b'{"aud": 5}', b'{"stream_id": 7}', b'{"ack": [null]}', b"\xff\xfe",
              b'{"delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": "http://x",'
              b' "authorization_header": 5}}']  # fmt: skip


async def test_malformed_bodies_get_400_and_never_500(issuer: Issuer) -> None:
    auth, stream = await receiver(issuer)
    json_type = {"Content-Type": "application/json"}
    poll_url = stream["delivery"]["endpoint_url"]
    # A poll with a well-formed body is a long poll (RFC 8936): only broken ones are sent.
    broken = [b"[]", b"{", b'{"ack": [null]}', b"\xff\xfe", b'{"maxEvents": "ten"}']
    for path, bodies in (("/ssf/stream", BAD_BODIES), ("/ssf/verify", BAD_BODIES),
                         (poll_url, broken)):  # fmt: skip
        for body in bodies:
            reply = await issuer.http.post(path, content=body, headers=auth | json_type)
            assert reply.status_code < 500, (path, body, reply.text)
            assert reply.headers["content-type"] == "application/json", (path, body)
        text = auth | {"Content-Type": "text/plain"}
        wrong = await issuer.http.post(path, content=b"{}", headers=text)
        assert (wrong.status_code, wrong.json()["error"]) == (415, "unsupported_media_type"), path
