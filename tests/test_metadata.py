"""The public documents (issue 19, point 12): RFC 8414 metadata and SSF configuration are
never publicly cacheable when their URLs come from the request's ``Host``, and production
refuses to start without an https issuer URL to hang them off."""

from __future__ import annotations

import httpx
import pytest

from revocast.errors import SettingsError
from revocast.issuer import create_app
from revocast.keys import SigningKey
from revocast.settings import Settings
from revocast_tools.redis_server import free_port
from tests.conftest import Issuer
from tests.support.servers import serve
from tests.test_cli import revocast

DOCUMENTS = ["/.well-known/oauth-authorization-server", "/.well-known/ssf-configuration"]


@pytest.mark.parametrize("path", DOCUMENTS)
async def test_a_host_derived_document_is_never_stored(issuer: Issuer, path: str) -> None:
    """Default REVOCAST_ISSUER ("revocast", not a URL): the URLs follow Host, so no cache may
    keep one caller's version for another."""
    reply = await issuer.http.get(path, headers={"Host": "evil.example"})
    assert reply.status_code == 200
    assert reply.json()["jwks_uri"].startswith("http://evil.example/")  # the caller's own view
    assert reply.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("path", DOCUMENTS)
async def test_a_document_under_the_issuer_url_is_public(issuer: Issuer, path: str) -> None:
    settings = issuer.settings.with_overrides(issuer="https://auth.example.com")
    async with serve(create_app(settings)) as url, httpx.AsyncClient(base_url=url) as http:
        reply = await http.get(path, headers={"Host": "evil.example"})
    assert reply.json()["jwks_uri"].startswith("https://auth.example.com/")  # Host is ignored
    assert reply.headers["cache-control"] == "public, max-age=300"


PRODUCTION_REFUSED = ["revocast", "http://auth.example.com", "https://", "https://a.example/?x=1",
                      "https://a.example/#f", "auth.example.com", "https://[::1"]  # fmt: skip


@pytest.mark.parametrize("issuer_value", PRODUCTION_REFUSED)
def test_production_needs_an_https_issuer_url(issuer_value: str) -> None:
    settings = production(issuer_value)
    with pytest.raises(SettingsError, match="REVOCAST_ISSUER"):
        create_app(settings)


def test_production_starts_with_an_https_issuer_url() -> None:
    create_app(production("https://auth.example.com"))  # no error: the lifespan is not run


def production(issuer_value: str) -> Settings:
    pem = SigningKey.generate().pem().decode()
    return Settings.from_values(redis_url="redis://127.0.0.1:1", environment="production",
                    signing_key_pem=pem, issuer=issuer_value)  # fmt: skip


def test_the_issuer_command_says_so_in_one_line(env: dict[str, str]) -> None:
    pem = SigningKey.generate().pem().decode()
    production_env = env | {"REVOCAST_ENV": "production", "REVOCAST_SIGNING_KEY": pem}
    result = revocast("issuer", "--port", str(free_port()), env=production_env)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "REVOCAST_ISSUER" in result.stderr
    assert "https://auth.example.com" in result.stderr
