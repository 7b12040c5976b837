"""Concurrency on real Redis: grace-window refreshes and refresh racing logout."""

from __future__ import annotations

import asyncio
from functools import partial

from tests.conftest import Issuer, VerifierFactory
from tests.support.servers import eventually
from tests.support.verdicts import is_rejected


async def test_concurrent_refreshes_in_grace_share_one_successor(
    issuer: Issuer, make_verifier: VerifierFactory
) -> None:
    await issuer.add_user("alice")
    verifier = await make_verifier()
    tokens = await issuer.login("alice")
    replies = await asyncio.gather(*(issuer.refresh(tokens["refresh_token"]) for _ in range(8)))
    assert [reply.status_code for reply in replies] == [200] * 8
    successors = {reply.json()["refresh_token"] for reply in replies}
    assert len(successors) == 1
    (successor,) = successors
    for reply in replies:
        assert verifier.verify(reply.json()["access_token"]).sid == tokens["session_id"]
    # The successor is live and single-use like any refresh token.
    assert (await issuer.refresh(successor)).status_code == 200


async def test_refresh_racing_logout_never_leaves_a_live_session(
    issuer: Issuer, make_verifier: VerifierFactory
) -> None:
    await issuer.add_user("alice")
    verifier = await make_verifier()
    for _ in range(15):
        tokens = await issuer.login("alice")
        refreshed, logged_out = await asyncio.gather(
            issuer.refresh(tokens["refresh_token"]),
            issuer.post_bearer("/v1/logout", tokens["access_token"]),
        )
        assert logged_out.status_code == 204
        assert refreshed.status_code in (200, 401)
        leftovers = [tokens["access_token"]]
        if refreshed.status_code == 200:
            leftovers.append(refreshed.json()["access_token"])
            again = await issuer.refresh(refreshed.json()["refresh_token"])
            assert again.status_code == 401, "a refresh token outlived its session"
        for access in leftovers:
            await eventually(partial(is_rejected, verifier, access))


async def test_refresh_racing_logout_all_never_leaves_a_live_session(
    issuer: Issuer, make_verifier: VerifierFactory
) -> None:
    await issuer.add_user("alice")
    verifier = await make_verifier()
    for _ in range(10):
        tokens = await issuer.login("alice")
        refreshed, _ = await asyncio.gather(
            issuer.refresh(tokens["refresh_token"]),
            issuer.post_bearer("/v1/logout-all", tokens["access_token"]),
        )
        if refreshed.status_code == 200:
            await eventually(partial(is_rejected, verifier, refreshed.json()["access_token"]))
            assert (await issuer.refresh(refreshed.json()["refresh_token"])).status_code == 401
