"""REVOCAST_STATUS_LIST=fallback (issue 22, point 2): a verifier whose streams are stale keeps
answering from the issuer's Token Status Lists while they are younger than their ttl, and
is stale again once they are not; a list is taken only if it is the issuer's."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator, Callable

import httpx
import jwt as pyjwt
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from revocast.errors import TokenRejected, VerifierStale
from revocast.issuer import operator
from revocast.issuer.status_lists import list_token
from revocast.keys import SigningKey
from revocast.settings import Settings
from revocast.status_list import list_uri
from revocast.verifier import Verifier
from revocast.verifier.host import host_dir
from revocast.verifier.metrics import VerifierCollector
from revocast.verifier.status_lists import ListRefused, read_list
from revocast_tools.proxy import TcpProxy
from tests.conftest import Issuer
from tests.support import status_list_reader

ISSUER = "https://auth.example.com"
TTL_S = 2  # lists fetched every second


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.with_overrides(issuer=ISSUER, status_list_ttl_s=TTL_S)


class Switch(httpx.AsyncBaseTransport):
    """The issuer's app in process (its lists' uris name auth.example.com), or down."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.down = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("the issuer is down", request=request)
        return await self.inner.handle_async_request(request)


@pytest.fixture
def link(issuer: Issuer) -> Switch:
    return Switch(httpx.ASGITransport(app=issuer.app))


@pytest.fixture(params=["own cache", "host's table"])
async def stale_verifier(
    issuer: Issuer, proxy: TcpProxy, link: Switch, request: pytest.FixtureRequest
) -> AsyncIterator[Verifier]:
    """A fallback verifier reading Redis through ``proxy``, its lists through ``link``: with
    its own revocation cache, or as the follower of its host's shared table."""
    settings = issuer.settings.with_overrides(
        redis_url=proxy.url,
        max_staleness_s=0.3,
        status_list="fallback",
        shared_cache="1" if request.param == "host's table" else "0",
    )
    client = httpx.AsyncClient(transport=link)
    verifier = Verifier(settings, lists_client=client)
    await verifier.start()
    try:
        yield verifier
    finally:
        await verifier.stop()
        await client.aclose()
        shutil.rmtree(host_dir(settings), ignore_errors=True)


def registry_of(verifier: Verifier) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(VerifierCollector(verifier))
    return registry


async def until(check: Callable[[], bool], within_s: float) -> float:
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < within_s, "not within the bound"
        await asyncio.sleep(0.05)
    return time.monotonic() - start


def refused_with(verifier: Verifier, token: str, code: str) -> bool:
    try:
        verifier.verify(token)
    except TokenRejected as exc:
        return exc.code == code
    except VerifierStale:
        return False
    return False


async def test_a_stale_verifier_answers_from_young_lists(
    issuer: Issuer, proxy: TcpProxy, stale_verifier: Verifier
) -> None:
    await issuer.add_user("alice")
    gone, kept = await issuer.login("alice"), await issuer.login("alice")
    assert stale_verifier.lists is not None
    await until(lambda: stale_verifier.lists is not None and stale_verifier.lists.usable, 5)
    proxy.blackhole()  # the streams go silent
    await until(lambda: stale_verifier.staleness_s > 0.3, 5)
    assert stale_verifier.verify(kept["access_token"]).sid == kept["session_id"]
    assert stale_verifier.by_list >= 1
    with pytest.raises(VerifierStale):  # a route's own bound holds for the lists too
        stale_verifier.verify(kept["access_token"], max_staleness_s=0.001)
    exported = generate_latest(registry_of(stale_verifier)).decode()
    assert "revocast_status_list_answers_total" in exported
    assert (await issuer.post_bearer("/v1/logout", gone["access_token"])).status_code == 204
    # The stream cannot tell it: the list does, within a fetch interval and the issuer's 0.5 s.
    waited = await until(
        lambda: refused_with(stale_verifier, gone["access_token"], "token_revoked"), TTL_S + 1
    )
    assert waited < TTL_S / 2 + 1
    assert stale_verifier.verify(kept["access_token"]).sid == kept["session_id"]


async def test_lists_older_than_their_ttl_make_it_stale(
    issuer: Issuer, proxy: TcpProxy, link: Switch, stale_verifier: Verifier
) -> None:
    await issuer.add_user("alice")
    tokens = await issuer.login("alice")
    await until(lambda: stale_verifier.lists is not None and stale_verifier.lists.usable, 5)
    proxy.blackhole()
    link.down = True  # nor can it fetch lists any more
    await until(lambda: stale_verifier.staleness_s > 0.3, 5)
    stale_verifier.verify(tokens["access_token"])  # the lists it holds are young yet
    await asyncio.sleep(TTL_S + 0.2)
    with pytest.raises(VerifierStale):
        stale_verifier.verify(tokens["access_token"])


async def test_a_token_without_a_status_claim_gets_no_fallback(
    issuer: Issuer, proxy: TcpProxy, stale_verifier: Verifier
) -> None:
    uid = await issuer.add_user("alice")
    tokens = await issuer.login("alice")
    ctx = issuer.ctx
    kid = await ctx.store.signing.signing_kid() or ""
    bare = ctx.minter.mint(
        uid=uid, sid=tokens["session_id"], roles=[], issued_ms=int(time.time() * 1000), kid=kid
    )
    await until(lambda: stale_verifier.lists is not None and stale_verifier.lists.usable, 5)
    proxy.blackhole()
    await until(lambda: stale_verifier.staleness_s > 0.3, 5)
    stale_verifier.verify(tokens["access_token"])
    with pytest.raises(VerifierStale):
        stale_verifier.verify(bare)


async def test_only_the_issuers_list_for_that_uri_is_taken(issuer: Issuer) -> None:
    await issuer.add_user("alice")
    tokens = await issuer.login("alice")
    _, uri = status_list_reader.reference(tokens["access_token"])
    keys = issuer.ctx.verifier.cache.keys
    served = (await issuer.http.get(uri.removeprefix(ISSUER))).text
    assert read_list(served, uri, keys).sub == uri
    other = list_uri(ISSUER, 7) or ""
    with pytest.raises(ListRefused, match="sub"):
        read_list(served, other, keys)  # another partition's list, replayed
    with pytest.raises(ListRefused, match="typ"):
        read_list(tokens["access_token"], uri, keys)
    with pytest.raises(ListRefused, match="key"):
        read_list(served, uri, {})
    stranger = SigningKey.generate()
    forged = list_token(issuer.settings, stranger, uri, b"\x00" * 8, int(time.time()))
    with pytest.raises(ListRefused, match="key"):
        read_list(forged, uri, keys)
    head, body, signature = served.split(".")
    with pytest.raises(ListRefused):
        read_list(f"{head}.{body}.{signature[:-4]}AAAA", uri, keys)


async def test_a_key_revoked_meanwhile_is_refused_through_the_jwks(
    issuer: Issuer, proxy: TcpProxy, stale_verifier: Verifier
) -> None:
    """The lists say nothing of keys: a stale verifier reads the issuer's JWKS with them, and
    a key that left it is revoked."""
    await issuer.add_user("alice")
    tokens = await issuer.login("alice")
    lists = stale_verifier.lists
    assert lists is not None
    await until(lambda: lists.usable, 5)
    proxy.blackhole()
    await until(lambda: stale_verifier.staleness_s > 0.3, 5)
    await lists.fetch_all()  # young lists, deterministically
    stale_verifier.verify(tokens["access_token"])
    kid = pyjwt.get_unverified_header(tokens["access_token"])["kid"]
    await operator.revoke_key(issuer.ctx.store, issuer.settings, kid, "leaked")
    await lists.fetch_jwks()
    assert refused_with(stale_verifier, tokens["access_token"], "key_revoked")
