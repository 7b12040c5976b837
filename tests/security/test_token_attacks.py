"""Every classic JWT attack, against the library and the sidecar: refused, for its reason."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from revocast.errors import TokenRejected
from revocast.keys import SigningKey
from revocast.settings import Settings
from revocast.store import Store
from revocast.verifier import Verifier, create_sidecar
from tests.security.attacks import ATTACKS, Attack, Forge
from tests.support.servers import serve

CASES = [pytest.param(attack, id=attack[0]) for attack in ATTACKS]


@pytest.fixture
async def deployment(settings: Settings, store: Store) -> AsyncIterator[tuple[Verifier, Forge]]:
    """A started verifier trusting the issuer's real key, and an attacker's workbench."""
    import json

    key = SigningKey.generate()
    await store.signing.publish_key(key.kid, json.dumps(key.public.jwk), "epoch")
    await store.signing.align_epochs()
    async with Verifier(settings) as verifier:
        yield verifier, Forge(key, settings.tokens.issuer, settings.tokens.audience)


async def test_the_forge_makes_valid_tokens(deployment: tuple[Verifier, Forge]) -> None:
    """Control: without an attack, the same workbench yields an accepted token."""
    verifier, forge = deployment
    assert verifier.verify(forge.signed()).sub == "victim"


@pytest.mark.parametrize("attack", CASES)
async def test_library_refuses(deployment: tuple[Verifier, Forge], attack: Attack) -> None:
    verifier, forge = deployment
    _, make, reason = attack
    with pytest.raises(TokenRejected) as caught:
        verifier.verify(make(forge))
    assert caught.value.code == reason


async def test_sidecar_refuses_every_attack(
    deployment: tuple[Verifier, Forge], settings: Settings
) -> None:
    _, forge = deployment
    async with serve(create_sidecar(settings)) as url, httpx.AsyncClient(base_url=url) as http:
        assert (await http.get("/verify", headers=_bearer(forge.signed()))).status_code == 200
        for name, make, reason in ATTACKS:
            token = make(forge)
            if not token:
                continue  # an empty bearer header is no token at all: missing_token
            reply = await http.get("/verify", headers=_bearer(token))
            if reply.status_code == 400:
                # Not even a well-formed bearer header (spaces, padding): RFC 6750's 400.
                assert reply.json()["error"] == "invalid_request", name
                continue
            assert reply.status_code == 401, name
            assert reply.json()["error"] == reason, name
            assert 'error="invalid_token"' in reply.headers["www-authenticate"], name


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
