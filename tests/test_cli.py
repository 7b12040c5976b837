"""The contract as outside checks see it: the `revocast` command and its services as processes."""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from revocast.browser import ACCESS_COOKIE
from revocast.settings import Settings
from revocast.store import Backend, Store
from revocast.verifier.host import host_dir
from revocast_tools.redis_server import free_port
from tests.support.topologies import EVERY_TOPOLOGY

PASSWORD = "correct horse battery"


@pytest.fixture(params=EVERY_TOPOLOGY)
def topology(request: pytest.FixtureRequest) -> str:
    """The contract holds with every REDIS_URL form: one server, Sentinel, Cluster."""
    return str(request.param)


def revocast(*args: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "revocast", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=30,
    )


def wait_ok(url: str, process: subprocess.Popen[bytes], timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, f"service exited with {process.returncode}"
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{url} never answered 200")


@pytest.fixture
def services(env: dict[str, str]) -> Iterator[tuple[str, str]]:
    issuer_port, verifier_port = free_port(), free_port()
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "revocast", name, "--port", str(port), "--log-level", "warning"],
            env=env | {"REVOCAST_TRUSTED_PROXIES": "127.0.0.1"},
        )
        for name, port in (("issuer", issuer_port), ("verifier", verifier_port))
    ]
    try:
        issuer, verifier = f"http://127.0.0.1:{issuer_port}", f"http://127.0.0.1:{verifier_port}"
        wait_ok(f"{issuer}/healthz", processes[0])
        wait_ok(f"{verifier}/readyz", processes[1])
        yield issuer, verifier
    finally:
        for process in processes:
            process.terminate()
        # uvicorn drains on SIGTERM, then re-raises it: -SIGTERM is its clean exit.
        codes = [stopped(process) for process in processes]
        assert set(codes) <= {0, -signal.SIGTERM}


def stopped(process: subprocess.Popen[bytes], timeout_s: float = 20) -> int:
    """The exit status; a process that does not stop prints its tasks (SIGUSR1) and fails."""
    try:
        return process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGUSR1)
        time.sleep(1)
        process.kill()
        process.wait(5)
        raise AssertionError(f"{process.args!r} did not stop in {timeout_s} s") from None


def test_user_add_then_full_flow(env: dict[str, str], services: tuple[str, str]) -> None:
    issuer, verifier = services
    added = revocast("user", "add", "alice", "--role", "admin", "--password-stdin", env=env,
                     stdin=PASSWORD + "\n")  # fmt: skip
    assert added.returncode == 0, added.stderr
    uid = added.stdout.strip()
    assert len(uid) == 32

    login = httpx.post(f"{issuer}/v1/login", json={"username": "alice", "password": PASSWORD})
    assert login.status_code == 200
    body = login.json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in",
                         "scope", "session_id", "user_id"}  # fmt: skip
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    verified = httpx.get(f"{verifier}/verify", headers=bearer)
    assert verified.status_code == 200
    assert verified.headers["x-auth-subject"] == uid
    assert verified.headers["x-auth-roles"] == "admin"
    # The gateway (this test, on loopback) is trusted; an X-Forwarded-For must not replace it
    # as the peer, or its word on the method would stop counting.
    by_cookie = httpx.post(
        f"{issuer}/v1/login", json={"username": "alice", "password": PASSWORD, "delivery": "cookie"}
    )
    cookie = {"Cookie": f"{ACCESS_COOKIE}={by_cookie.cookies[ACCESS_COOKIE]}"}
    said = {"X-Forwarded-Method": "GET", "X-Forwarded-For": "203.0.113.9"}
    assert httpx.get(f"{verifier}/verify", headers=cookie | said).status_code == 200
    assert httpx.get(f"{verifier}/verify", headers=cookie).status_code == 403

    jwks = httpx.get(f"{issuer}/.well-known/jwks.json").json()
    assert [key["alg"] for key in jwks["keys"]] == ["EdDSA"]
    assert all("d" not in key for key in jwks["keys"])

    assert httpx.post(f"{issuer}/v1/logout", headers=bearer).status_code == 204
    deadline = time.monotonic() + 2
    while httpx.get(f"{verifier}/verify", headers=bearer).status_code != 401:
        assert time.monotonic() < deadline, "revocation never reached the sidecar"
        time.sleep(0.005)


def test_user_add_refuses_duplicates_and_weak_input(env: dict[str, str]) -> None:
    assert (
        revocast("user", "add", "bob", "--password-stdin", env=env, stdin=PASSWORD).returncode == 0
    )
    again = revocast("user", "add", "bob", "--password-stdin", env=env, stdin=PASSWORD)
    assert again.returncode == 1
    assert "conflict" in again.stderr
    short = revocast("user", "add", "carol", "--password-stdin", env=env, stdin="short")
    assert short.returncode == 1
    assert "password" in short.stderr
    assert "--password-stdin" in revocast("user", "add", "dave", env=env).stderr


def test_services_need_redis_url(env: dict[str, str]) -> None:
    env = {k: v for k, v in env.items() if k != "REDIS_URL"}
    result = revocast("issuer", env=env)
    assert result.returncode != 0
    assert "REDIS_URL" in result.stderr


def test_verifier_with_several_workers(env: dict[str, str]) -> None:
    """`revocast verifier --workers 2`: two processes on one port, sharing one follower."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "revocast", "verifier", "--port", str(port), "--workers", "2",
         "--log-level", "warning"], env=env,
    )  # fmt: skip
    try:
        wait_ok(f"http://127.0.0.1:{port}/readyz", server)
        children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
        assert len(children) >= 2  # the workers (uvicorn's supervisor may add a helper)
        missing = httpx.get(f"http://127.0.0.1:{port}/verify")
        assert (missing.status_code, missing.json()["error"]) == (401, "missing_token")
        # The workers run the head bound too (the protocol class and the bound travel in
        # their pickled config): a 64 KiB + 1 head is 431.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET /verify HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 65536 + b"\r\n\r\n")
            assert sock.recv(64).startswith(b"HTTP/1.1 431 ")
    finally:
        server.terminate()
        server.wait(15)
        shutil.rmtree(host_dir(Settings.from_env(env)), ignore_errors=True)  # their shared table


async def stored_clients(env: dict[str, str]) -> dict[str, str]:
    """What Redis holds for the clients, read as revocast reads it (any topology)."""
    backend = Backend(Settings.from_env(env))
    try:
        await backend.start()
        return await Store(backend).clients.every()
    finally:
        await backend.aclose()


# Nine commands, each a Python start: about 1 s apiece here, over 6 s on a host at load 10.
@pytest.mark.timeout(240)
def test_client_registry(env: dict[str, str]) -> None:
    """`revocast client add|list|remove`: a confidential client's secret is printed once and
    Redis keeps only its SHA-256."""
    added = revocast("client", "add", "shop", "--confidential", env=env)
    assert added.returncode == 0, added.stderr
    shop = json.loads(added.stdout)
    secret = shop.pop("client_secret")
    assert shop["client_id"].startswith("c_")
    assert shop["confidential"] is True
    public = json.loads(revocast("client", "add", "spa", env=env).stdout)
    assert "client_secret" not in public
    assert public["confidential"] is False

    stored = asyncio.run(stored_clients(env))
    record = json.loads(stored[shop["client_id"]])
    assert secret not in stored[shop["client_id"]]
    assert record["secret_sha256"] == hashlib.sha256(secret.encode()).hexdigest()

    listed = json.loads(revocast("client", "list", env=env).stdout)["clients"]
    assert [c["name"] for c in listed] == ["revocast", "shop", "spa"]
    assert all("client_secret" not in c and "secret_sha256" not in c for c in listed)

    # Roles (issue 19 point 8): introspect lets a confidential client introspect any token.
    given = revocast("client", "roles", "shop", "introspect", env=env)
    assert json.loads(given.stdout)["roles"] == ["introspect"], given.stderr
    assert json.loads(asyncio.run(stored_clients(env))[shop["client_id"]])["roles"] == [
        "introspect"
    ]
    assert json.loads(revocast("client", "roles", "shop", env=env).stdout)["roles"] == []

    for words, code in (
        (("client", "add", "shop"), "conflict"),
        (("client", "add", "bad name!"), "invalid_request"),
        (("client", "remove", "nobody"), "not_found"),
        (("client", "remove", "revocast"), "not_found"),
        (("client", "roles", "spa", "introspect"), "invalid_request"),  # a public client
        (("client", "add", "ro", "--role", "introspect"), "invalid_request"),
    ):
        refused = revocast(*words, env=env)
        assert refused.returncode == 1
        assert refused.stderr.startswith(f"error: {code}:"), refused.stderr
    assert revocast("client", "remove", "shop", env=env).returncode == 0
    assert revocast("client", "remove", public["client_id"], env=env).returncode == 0
    listed = json.loads(revocast("client", "list", env=env).stdout)["clients"]
    assert [c["name"] for c in listed] == ["revocast"]
