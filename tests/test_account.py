"""Self-service sessions and password change, and the per-user session limit."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

import httpx

from revocast.issuer import create_app
from revocast.verifier import Verifier
from tests.conftest import PASSWORD, Issuer, VerifierFactory, bearer
from tests.support.servers import eventually, serve
from tests.support.verdicts import is_rejected, rejection


async def both_reject(verifiers: list[Verifier], token: str) -> None:
    await asyncio.gather(*(eventually(partial(is_rejected, v, token))
                           for v in verifiers))  # fmt: skip


async def test_own_sessions_are_listed_with_the_current_one(issuer: Issuer) -> None:
    await issuer.add_user("alice")
    phone = await issuer.login("alice")
    laptop = await issuer.login("alice")
    reply = await issuer.http.get("/v1/sessions", headers=bearer(laptop))
    sessions = reply.json()["sessions"]
    assert [(s["session_id"], s["current"]) for s in sessions] == [
        (phone["session_id"], False),
        (laptop["session_id"], True),
    ]
    assert sessions[0]["user_agent"].startswith("python-httpx")
    assert sessions[0]["client_address"] == "127.0.0.1"
    assert sessions[0]["client_id"] == "revocast"


async def test_ending_one_of_my_sessions(issuer: Issuer, make_verifier: VerifierFactory) -> None:
    await issuer.add_user("alice")
    await issuer.add_user("mallory")
    verifiers = [await make_verifier(), await make_verifier()]
    phone, laptop = await issuer.login("alice"), await issuer.login("alice")
    mallory = await issuer.login("mallory")

    stolen = await issuer.http.delete(f"/v1/sessions/{phone['session_id']}",
                                      headers=bearer(mallory))  # fmt: skip
    assert stolen.status_code == 404  # not yours: not found, and nothing happens
    assert rejection(verifiers[0], phone["access_token"]) is None

    ended = await issuer.http.delete(f"/v1/sessions/{phone['session_id']}", headers=bearer(laptop))
    assert ended.status_code == 204
    await both_reject(verifiers, phone["access_token"])
    for verifier in verifiers:
        verifier.verify(laptop["access_token"])


async def test_password_change_ends_every_other_session(
    issuer: Issuer, make_verifier: VerifierFactory
) -> None:
    await issuer.add_user("alice")
    verifiers = [await make_verifier(), await make_verifier()]
    old_phone, current = await issuer.login("alice"), await issuer.login("alice")
    url, auth = "/v1/password", bearer(current)

    wrong_current = {"current_password": "nope", "new_password": "n" * 12}
    wrong = await issuer.http.post(url, headers=auth, json=wrong_current)
    assert (wrong.status_code, wrong.json()["error"]) == (403, "wrong_password")
    too_short = {"current_password": PASSWORD, "new_password": "short"}
    short = await issuer.http.post(url, headers=auth, json=too_short)
    assert short.status_code == 400
    assert rejection(verifiers[0], old_phone["access_token"]) is None  # refusals change nothing

    changed = await issuer.http.post(url, headers=auth,
                                     json={"current_password": PASSWORD,
                                           "new_password": "a much better passphrase"})  # fmt: skip
    assert changed.json() == {
        "other_sessions_ended": 1,
        "event_id": changed.headers["Revocast-Event-Id"],
    }
    await both_reject(verifiers, old_phone["access_token"])
    assert (await issuer.refresh(old_phone["refresh_token"])).status_code == 401
    for verifier in verifiers:
        verifier.verify(current["access_token"])
    old = {"username": "alice", "password": PASSWORD}
    assert (await issuer.http.post("/v1/login", json=old)).status_code == 401
    new = {"username": "alice", "password": "a much better passphrase"}
    assert (await issuer.http.post("/v1/login", json=new)).status_code == 200


async def test_session_limit_revokes_the_oldest(
    issuer: Issuer, make_verifier: VerifierFactory
) -> None:
    settings = issuer.settings.with_overrides(max_sessions_per_user=2)
    await issuer.add_user("alice")
    verifier = await make_verifier()
    async with serve(create_app(settings)) as url, httpx.AsyncClient(base_url=url) as http:

        async def login() -> dict[str, Any]:
            reply = await http.post("/v1/login", json={"username": "alice", "password": PASSWORD})
            body: dict[str, Any] = reply.json()
            return body

        first, second = await login(), await login()
        third = await login()
        await eventually(lambda: rejection(verifier, first["access_token"]) == "session_revoked")
        for tokens in (second, third):
            verifier.verify(tokens["access_token"])
        listed = await http.get("/v1/sessions", headers=bearer(third))
        ids = [s["session_id"] for s in listed.json()["sessions"]]
        assert ids == [second["session_id"], third["session_id"]]
