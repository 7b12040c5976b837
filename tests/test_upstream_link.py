"""Linking a local user to the upstream IdP's user at login (issue 19, point 10).

Before: a login with one's own password and someone else's still-valid ID token claimed that
IdP identity for good. The victim then got 409, and the IdP's logout of the victim ended the
squatter's sessions. Now a link needs the login's own nonce (revocast issues it; the ID
token carries its hash), spent in the same step as the link; a link never moves, and an
operator lists and removes links (`revocast upstream links|unlink`, audited).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from functools import partial

import httpx

from revocast.issuer import linking
from revocast.keyspace import upstream_digest
from tests.conftest import PASSWORD, Issuer, VerifierFactory
from tests.support.idp import IDP, IdP
from tests.support.servers import eventually
from tests.support.verdicts import is_rejected, outcome
from tests.test_operator_cli import output, revocast
from tests.test_upstream_revocations import linked_login, logout, upstream_nonce


async def login_with(
    issuer: Issuer, username: str, id_token: str, secret: str | None
) -> httpx.Response:
    body = {"username": username, "password": PASSWORD, "upstream_id_token": id_token}
    if secret is not None:
        body["upstream_nonce"] = secret
    return await issuer.http.post("/v1/login", json=body)


async def test_someone_elses_id_token_links_nothing(
    linked: Issuer, idp: IdP, make_verifier: VerifierFactory
) -> None:
    """The issue's attack: mallory logs in with her password and alice's ID token. Before,
    200, then alice got 409 and the IdP's logout of alice ended mallory's sessions."""
    await linked.add_user("alice")
    mallory = await linked.add_user("mallory")
    # The ID token alice's client got for its own login (leaked, say from a log), and one
    # the IdP issued without a nonce.
    alice_secret, alice_nonce = await upstream_nonce(linked)
    leaked = idp.id_token("upstream-alice", "alice-s", alice_nonce)
    bare = idp.id_token("upstream-alice", "alice-s", None)
    mallory_secret, _ = await upstream_nonce(linked)
    attempts = {
        "no nonce at all": await login_with(linked, "mallory", bare, None),
        "a nonce-less ID token": await login_with(linked, "mallory", bare, mallory_secret),
        "her own nonce": await login_with(linked, "mallory", leaked, mallory_secret),
        "no secret": await login_with(linked, "mallory", leaked, None),
    }
    for name, reply in attempts.items():
        assert reply.status_code == 400, (name, reply.text)
        assert reply.json()["error"] in ("invalid_request", "invalid_token", "invalid_nonce")
    assert await linked.ctx.store.sessions.of_user(mallory) == []
    assert await linked.ctx.store.signals.upstream_user(IDP, "upstream-alice") is None

    verifier = await make_verifier()
    mine = await login_with(linked, "alice", leaked, alice_secret)
    assert mine.status_code == 200, mine.text  # alice's own login links her
    mallory_tokens = await linked.login("mallory")
    assert (await logout(linked, idp.logout_token(sub="upstream-alice"))).status_code == 200
    await eventually(partial(is_rejected, verifier, mine.json()["access_token"]))
    assert outcome(verifier, mallory_tokens["access_token"]) == "accepted"


async def test_a_nonce_links_one_login(linked: Issuer, idp: IdP) -> None:
    """The secret and its ID token, sent twice (in turn, then at once): one login each time."""
    uid = await linked.add_user("alice")
    secret, nonce = await upstream_nonce(linked)
    id_token = idp.id_token("upstream-alice", "s1", nonce)
    assert (await login_with(linked, "alice", id_token, secret)).status_code == 200
    again = await login_with(linked, "alice", id_token, secret)
    assert (again.status_code, again.json()["error"]) == (400, "invalid_nonce")
    assert len(await linked.ctx.store.sessions.of_user(uid)) == 1

    secret, nonce = await upstream_nonce(linked)
    id_token = idp.id_token("upstream-alice", "s2", nonce)
    replies = await asyncio.gather(*(login_with(linked, "alice", id_token, secret)
                                     for _ in range(5)))  # fmt: skip
    assert sorted(r.status_code for r in replies) == [200, 400, 400, 400, 400]
    # A login that lost the race had its new session ended: one live session per nonce.
    assert len(await linked.ctx.store.sessions.of_user(uid)) == 2


async def test_forged_expired_or_foreign_nonces_are_refused(linked: Issuer, idp: IdP) -> None:
    uid = await linked.add_user("alice")
    secret, _ = await upstream_nonce(linked)
    key = await linked.ctx.store.signals.find_upstream_nonce_key()
    assert key is not None
    prefix = linked.settings.redis.key_prefix
    expired, _ = linking.issue(key, prefix, time.time() - linking.NONCE_TTL_S - 1)
    foreign, _ = linking.issue(b"k" * 32, prefix, time.time())  # another deployment's key
    tampered = secret[:-2] + ("AA" if secret[-2:] != "AA" else "BA")
    for name, candidate in {"expired": expired, "foreign": foreign, "tampered": tampered,
                            "not base64url": "!" * 75, "padded": secret + "="}.items():  # fmt: skip
        id_token = idp.id_token("upstream-alice", "s", linking.nonce_of(candidate))
        reply = await login_with(linked, "alice", id_token, candidate)
        assert (reply.status_code, reply.json()["error"]) == (400, "invalid_nonce"), name
    assert await linked.ctx.store.sessions.of_user(uid) == []


async def test_a_link_never_moves(linked: Issuer, idp: IdP) -> None:
    """The IdP's user linked to alice stays hers, even when it proves itself for another
    local account (the same person's, or not): 409, and no session is made."""
    await linked.add_user("alice")
    mallory = await linked.add_user("mallory")
    assert (await linked_login(linked, idp, "upstream-alice", "s1")).status_code == 200
    taken = await linked_login(linked, idp, "upstream-alice", "s9", username="mallory")
    assert (taken.status_code, taken.json()["error"]) == (409, "conflict")
    assert "revocast upstream unlink" in taken.json()["detail"]
    assert await linked.ctx.store.sessions.of_user(mallory) == []
    assert await linked.ctx.store.signals.upstream_user(IDP, "upstream-alice") != mallory


async def test_a_forged_id_token_at_login_writes_nothing(linked: Issuer, idp: IdP) -> None:
    uid = await linked.add_user("alice")
    secret, nonce = await upstream_nonce(linked)
    forged = IdP.new().id_token("upstream-alice", "s", nonce)
    reply = await login_with(linked, "alice", forged, secret)
    assert (reply.status_code, reply.json()["error"]) == (400, "invalid_token")
    assert await linked.ctx.store.sessions.of_user(uid) == []


async def test_the_nonce_endpoint(linked: Issuer, issuer: Issuer) -> None:
    first = await linked.http.post("/v1/login/upstream-nonce")
    second = await linked.http.post("/v1/login/upstream-nonce")
    assert first.status_code == 200
    assert first.headers["Cache-Control"] == "no-store"
    body = first.json()
    assert body["expires_in"] == linking.NONCE_TTL_S
    # The nonce is the secret's SHA-256 (base64url), the secret revocast's own: 75 characters.
    digest = hashlib.sha256(body["upstream_nonce"].encode()).digest()
    assert body["nonce"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert len(body["upstream_nonce"]) == 75
    assert body["upstream_nonce"] != second.json()["upstream_nonce"]
    unconfigured = await issuer.http.post("/v1/login/upstream-nonce")
    assert (unconfigured.status_code, unconfigured.json()["error"]) == (404, "not_found")


async def test_links_are_listed_and_removed_from_the_command_line(linked: Issuer, idp: IdP) -> None:
    alice = await linked.add_user("alice")
    mallory = await linked.add_user("mallory")
    assert (await linked_login(linked, idp, "upstream-alice", "s1")).status_code == 200
    link_id = upstream_digest(IDP, "upstream-alice")

    listed = output(await revocast(linked, "upstream", "links"))
    (link,) = listed["links"]
    assert {k: link[k] for k in ("link_id", "user_id", "username", "iss", "sub")} == {
        "link_id": link_id, "user_id": alice, "username": "alice", "iss": IDP,
        "sub": "upstream-alice",
    }  # fmt: skip
    assert link["linked_at"]
    assert output(await revocast(linked, "upstream", "links", "mallory")) == {"links": []}

    wrong = await revocast(linked, "upstream", "unlink", "mallory", link_id)
    assert (wrong.returncode, "not_found" in wrong.stderr) == (1, True), wrong.stderr
    unlinked = output(await revocast(
        linked, "upstream", "unlink", "alice", link_id, "--reason", "moved IdP"
    ))  # fmt: skip
    assert unlinked == {"user_id": alice, "link_id": link_id, "unlinked": True}
    assert output(await revocast(linked, "upstream", "links")) == {"links": []}

    audit = [(fields["actor"], fields["action"], fields["target"], fields["reason"])
             for _, fields in await linked.ctx.store.streams.audit_page("+", 10)]  # fmt: skip
    assert audit[0][1:] == ("upstream_unlink", f"{alice}/{link_id}", "moved IdP")
    assert audit[0][0].startswith("cli:")
    assert (alice, "upstream_link", f"{alice}/{link_id}", "") in audit

    # Unlinked, the IdP's user may link again, to whoever proves both halves.
    assert (
        await linked_login(linked, idp, "upstream-alice", "s2", username="mallory")
    ).status_code == 200
    assert await linked.ctx.store.signals.upstream_user(IDP, "upstream-alice") == mallory
