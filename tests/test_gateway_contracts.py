"""Traefik's ForwardAuth and Envoy's ext_authz (HTTP), by contract: the shipped configs say
what their docs say, and the sidecar answers the request shapes those docs specify (Envoy
also runs for real in tests/test_gateways.py; no registry here ships Traefik).

Traefik (ForwardAuth): a GET to the address, with the original request's headers and
X-Forwarded-Method, -Proto, -Host and -Uri set by Traefik. Envoy (ext_authz HTTP service):
the original method, ``path_prefix`` + the original path, the original authority as Host,
and only the headers ``allowed_headers`` lets through.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from revocast.browser import ACCESS_COOKIE, CSRF_COOKIE
from revocast.verifier import create_sidecar
from revocast_tools import stack
from tests.conftest import PASSWORD, Issuer
from tests.support.servers import eventually, serve

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
SITE = "https://app.example"


async def cookie_login(issuer: Issuer, name: str) -> dict[str, str]:
    reply = await issuer.http.post(
        "/v1/login", json={"username": name, "password": PASSWORD, "delivery": "cookie"}
    )
    assert reply.status_code == 200
    jar = dict(reply.cookies.items())
    return {"Cookie": f"{ACCESS_COOKIE}={jar[ACCESS_COOKIE]}; {CSRF_COOKIE}={jar[CSRF_COOKIE]}",
            "X-CSRF-Token": jar[CSRF_COOKIE]}  # fmt: skip


def test_no_gateway_listens_where_the_stack_does(capsys: pytest.CaptureFixture[str]) -> None:
    """Every config in deploy/ once listened on 8000, the issuer's port under ./scripts/run:
    following README, the gateway and the stack could not both start."""
    with pytest.raises(SystemExit):
        stack.main(["--help"])
    taken = {int(port) for port in re.findall(r"default: (\d+)\)", capsys.readouterr().out)}
    assert taken >= {8000, 8001}
    envoy = yaml.safe_load((DEPLOY / "envoy.yaml").read_text())
    [listener] = envoy["static_resources"]["listeners"]
    listening = {
        "nginx.conf": re.findall(r"^\s*listen [\d.]+:(\d+);", read("nginx.conf"), re.MULTILINE),
        "Caddyfile": re.findall(r"REVOCAST_LISTEN .* http://[\d.]+:(\d+)", read("Caddyfile")),
        "envoy.yaml": [listener["address"]["socket_address"]["port_value"]],
        "traefik.yml": re.findall(r"--entryPoints\.web\.address=:(\d+)", read("traefik.yml")),
    }
    for name, ports in listening.items():
        assert ports, f"no listening port found in deploy/{name}"
        assert not {int(port) for port in ports} & taken, (name, ports, taken)


def read(name: str) -> str:
    return (DEPLOY / name).read_text()


def test_traefik_config_says_what_the_contract_needs() -> None:
    http: dict[str, Any] = yaml.safe_load((DEPLOY / "traefik.yml").read_text())["http"]
    forward = http["middlewares"]["revocast"]["forwardAuth"]
    assert forward["address"].endswith("/verify")
    assert forward["trustForwardHeader"] is False
    identity = ["X-Auth-Subject", "X-Auth-Session", "X-Auth-Roles"]
    assert forward["authResponseHeaders"] == identity
    stripped = http["middlewares"]["revocast-strip"]["headers"]["customRequestHeaders"]
    assert stripped == dict.fromkeys(identity, "")
    assert http["routers"]["app"]["middlewares"] == ["revocast-strip", "revocast"]


def test_envoy_config_says_what_the_contract_needs() -> None:
    """The static half of tests/test_gateways.py's run through a real Envoy, for machines
    without one. Envoy runs its HTTP filters in the listed order on the way in, and applies
    a route's ``request_headers_to_remove`` only when the router forwards the request, after
    ext_authz: removing X-Auth-* there removed the sidecar's headers (contour#4657). So the
    client's copies go in a filter before ext_authz, and nowhere after it."""
    config: dict[str, Any] = yaml.safe_load((DEPLOY / "envoy.yaml").read_text())
    [listener] = config["static_resources"]["listeners"]
    manager = listener["filter_chains"][0]["filters"][0]["typed_config"]
    filters = [f["name"].removeprefix("envoy.filters.http.") for f in manager["http_filters"]]
    assert filters == ["header_mutation", "ext_authz", "router"]
    mutation, ext_authz = (f["typed_config"] for f in manager["http_filters"][:2])
    removed = {m["remove"] for m in mutation["mutations"]["request_mutations"]}
    assert ext_authz["failure_mode_allow"] is False
    sent = {p["exact"] for p in ext_authz["allowed_headers"]["patterns"]}
    assert {"authorization", "cookie", "origin", "x-csrf-token"} <= sent
    service = ext_authz["http_service"]
    assert service["path_prefix"] == "/verify"
    answer = service["authorization_response"]
    upstream = {p["exact"] for p in answer["allowed_upstream_headers"]["patterns"]}
    client = {p["exact"] for p in answer["allowed_client_headers"]["patterns"]}
    assert upstream == removed == {"x-auth-subject", "x-auth-session", "x-auth-roles"}
    assert "allowed_upstream_headers_to_append" not in answer  # append would keep the client's
    assert {"www-authenticate", "content-type"} <= client

    routes = manager["route_config"]
    removed_later = [
        name
        for level in (routes, *routes["virtual_hosts"],
                      *(r for v in routes["virtual_hosts"] for r in v["routes"]))
        for name in level.get("request_headers_to_remove", [])
    ]  # fmt: skip
    assert not [name for name in removed_later if name.lower().startswith("x-auth-")]

    # No verdict (ext_authz's status_on_error, flagged UAEX): 503 with Retry-After, and a
    # status the sidecar never sends, so that nothing else is rewritten.
    [mapper] = manager["local_reply_config"]["mappers"]
    error = ext_authz["status_on_error"]["code"]
    status_filter, flag_filter = mapper["filter"]["and_filter"]["filters"]
    assert status_filter["status_code_filter"]["comparison"]["value"]["default_value"] == error
    assert flag_filter["response_flag_filter"]["flags"] == ["UAEX"]
    assert (error, mapper["status_code"]) == (502, 503)
    assert mapper["headers_to_add"][0]["header"] == {"key": "retry-after", "value": "1"}


async def test_traefik_forward_auth_requests(issuer: Issuer) -> None:
    uid = await issuer.add_user("alice")
    tokens = await issuer.login("alice")
    cookies = await cookie_login(issuer, "alice")
    settings = issuer.settings.with_overrides(trusted_proxies=("127.0.0.1",))
    async with serve(create_sidecar(settings)) as url, httpx.AsyncClient(base_url=url) as http:

        def forwarded(method: str) -> dict[str, str]:
            return {"X-Forwarded-Method": method, "X-Forwarded-Proto": "https",
                    "X-Forwarded-Host": "shop.example", "X-Forwarded-Uri": "/api/orders/7",
                    "X-Forwarded-For": "203.0.113.9"}  # fmt: skip

        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        for method in ("GET", "POST", "PUT", "DELETE"):
            ok = await http.get("/verify", headers=bearer | forwarded(method))
            assert (ok.status_code, ok.headers["x-auth-subject"]) == (200, uid)
        own, foreign = {"Origin": "https://shop.example"}, {"Origin": "https://evil.example"}
        read = await http.get("/verify", headers=cookies | forwarded("GET"))
        assert read.status_code == 200, read.text
        change = await http.get("/verify", headers=cookies | own | forwarded("POST"))
        assert change.status_code == 200, change.text
        refused = await http.get("/verify", headers=cookies | foreign | forwarded("POST"))
        assert (refused.status_code, refused.json()["error"]) == (403, "csrf_failed")

        await issuer.post_bearer("/v1/logout", tokens["access_token"])

        async def revoked() -> bool:
            reply = await http.get("/verify", headers=bearer | forwarded("GET"))
            return reply.status_code == 401 and "invalid_token" in reply.headers["www-authenticate"]

        await eventually(revoked)


async def test_envoy_ext_authz_requests(issuer: Issuer) -> None:
    uid = await issuer.add_user("alice")
    tokens = await issuer.login("alice")
    cookies = await cookie_login(issuer, "alice")
    settings = issuer.settings.with_overrides(
        trusted_proxies=("127.0.0.1",), allowed_origins=(SITE,)
    )
    async with serve(create_sidecar(settings)) as url, httpx.AsyncClient(base_url=url) as http:
        authority = {"Host": "app.example"}
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"):
            ok = await http.request(
                method, "/verify/api/orders/7?page=2", headers=authority | bearer
            )
            assert (ok.status_code, ok.headers["x-auth-subject"]) == (200, uid), method
        read = await http.get("/verify/api/orders/7", headers=authority | cookies)
        assert read.status_code == 200, read.text
        for method in ("POST", "PUT", "DELETE"):
            ours = authority | cookies | {"Origin": SITE}
            assert (await http.request(method, "/verify/api/x", headers=ours)).status_code == 200
            theirs = authority | cookies | {"Origin": "https://evil.example"}
            refused = await http.request(method, "/verify/api/x", headers=theirs)
            assert (refused.status_code, refused.json()["error"]) == (403, "csrf_failed")
        missing = await http.post("/verify/api/x", headers=authority)
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == 'Bearer realm="revocast"'
