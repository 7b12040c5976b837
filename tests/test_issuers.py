"""Several issuers against one Redis: each can sign with the active key, through a rotation
and a key revocation.

Keys are shared sealed in Redis under REVOCAST_KEY_ENCRYPTION_KEY (or through a shared key
directory), and ``keys rotate`` activates a key only once every live issuer holds it.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import httpx
import jwt
import pytest

from revocast.errors import SigningKeyUnavailable
from revocast.issuer import create_app, operator
from revocast.issuer.sealing import unseal
from revocast.settings import Settings, key_encryption_key_bytes
from revocast.verifier import Verifier
from tests.conftest import Issuer, VerifierFactory
from tests.support.servers import eventually, serve
from tests.support.verdicts import outcome


@contextlib.asynccontextmanager
async def issuers(*all_settings: Settings) -> AsyncIterator[list[Issuer]]:
    async with contextlib.AsyncExitStack() as stack:
        started = []
        for settings in all_settings:
            app = create_app(settings)
            url = await stack.enter_async_context(serve(app))
            http = await stack.enter_async_context(httpx.AsyncClient(base_url=url))
            started.append(Issuer(url, http, settings, app))
        yield started


def refused_as(verifier: Verifier, token: str, code: str) -> bool:
    return outcome(verifier, token) == code


def kid_of(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


@pytest.fixture
def kek() -> str:
    return secrets.token_urlsafe(32)


async def test_two_issuers_share_keys_sealed_in_redis(
    settings: Settings, tmp_path: Path, kek: str, make_verifier: VerifierFactory
) -> None:
    one = settings.with_overrides(key_dir=str(tmp_path / "a"), key_encryption_key=kek)
    two = settings.with_overrides(key_dir=str(tmp_path / "b"), key_encryption_key=kek)
    async with issuers(one, two) as (first, second):
        await first.add_user("alice")
        before = [await first.login("alice"), await second.login("alice")]
        assert kid_of(before[0]["access_token"]) == kid_of(before[1]["access_token"])
        assert not list((tmp_path / "b").glob("*.pem"))  # the second never had a key file

        ctx = first.ctx
        rotated = await operator.rotate_key(ctx.store, one)
        new_kid = str(rotated["kid"])
        after = [await first.login("alice"), await second.login("alice")]
        assert {kid_of(t["access_token"]) for t in after} == {new_kid}

        verifier = await make_verifier()
        old_kid = kid_of(before[0]["access_token"])
        await operator.revoke_key(ctx.store, one, old_kid, "leaked")
        for tokens in before:
            await eventually(partial(refused_as, verifier, tokens["access_token"], "key_revoked"))
        for tokens in after:
            assert outcome(verifier, tokens["access_token"]) == "accepted"
        # Revoking the active key rotates first: both issuers keep signing, with the newest.
        revoked = await operator.revoke_key(ctx.store, one, new_kid, "leaked too")
        newest = str(revoked["now_active"])
        assert newest not in (new_kid, old_kid)
        last = [await first.login("alice"), await second.login("alice")]
        assert {kid_of(t["access_token"]) for t in last} == {newest}


async def test_an_issuer_started_later_fetches_the_active_key(
    settings: Settings, tmp_path: Path, kek: str
) -> None:
    one = settings.with_overrides(key_dir=str(tmp_path / "a"), key_encryption_key=kek)
    async with issuers(one) as (first,):
        await first.add_user("alice")
        await operator.rotate_key(first.ctx.store, one)
        active = await first.ctx.store.signing.signing_kid()
        late = one.with_overrides(key_dir=str(tmp_path / "late"))
        async with issuers(late) as (second,):
            assert kid_of((await second.login("alice"))["access_token"]) == active


async def test_redis_holds_no_usable_private_key(
    settings: Settings, tmp_path: Path, kek: str
) -> None:
    one = settings.with_overrides(key_dir=str(tmp_path / "a"), key_encryption_key=kek)
    async with issuers(one) as (first,):
        kid = await first.ctx.store.signing.signing_kid()
        assert kid is not None
        sealed = await first.ctx.store.signing.sealed_key(kid)
        assert sealed is not None
        assert "PRIVATE KEY" not in sealed
        wrong = key_encryption_key_bytes(secrets.token_urlsafe(32))
        assert unseal(sealed, wrong, one.redis.key_prefix, kid) is None
        right = key_encryption_key_bytes(kek)
        assert unseal(sealed, right, "another-deployment", kid) is None  # bound to the prefix
        key = unseal(sealed, right, one.redis.key_prefix, kid)
        assert key is not None
        assert key.kid == kid


async def test_without_shared_keys_rotation_refuses_to_activate(
    settings: Settings, tmp_path: Path
) -> None:
    """Each issuer with its own key folder and no KEK: the rotated key never becomes active,
    so no issuer is asked to sign with a key it lacks; the error names the issuer."""
    one = settings.with_overrides(key_dir=str(tmp_path / "a"))
    two = settings.with_overrides(key_dir=str(tmp_path / "b"))
    async with issuers(one) as (first,):
        await first.add_user("alice")
        active = await first.ctx.store.signing.signing_kid()
        async with issuers(two) as (second,):
            await second.http.get("/healthz")
            with pytest.raises(SigningKeyUnavailable, match="NOT active") as refused:
                await operator.rotate_key(first.ctx.store, one, wait_s=1.5)
            assert "live issuers" in refused.value.detail
            assert await first.ctx.store.signing.signing_kid() == active
            assert kid_of((await first.login("alice"))["access_token"]) == active


async def test_a_shared_key_directory_works_without_a_kek(
    settings: Settings, tmp_path: Path
) -> None:
    shared = settings.with_overrides(key_dir=str(tmp_path / "shared"))
    async with issuers(shared, shared) as (first, second):
        await first.add_user("alice")
        rotated = await operator.rotate_key(first.ctx.store, shared)
        for issuer in (first, second):
            tokens = await issuer.login("alice")
            assert kid_of(tokens["access_token"]) == rotated["kid"]
