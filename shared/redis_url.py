"""``REDIS_URL`` forms, and which topology each one picks.

- ``redis://``, ``rediss://`` (TLS), ``unix://``: one server, as redis-py reads them.
- ``redis+sentinel://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...]/MASTER_NAME[/DB]``:
  Sentinel. The password is the data nodes'; ``?sentinel_password=`` (and
  ``sentinel_username=``) authenticate to the sentinels. ``rediss+sentinel://``
  speaks TLS to sentinels and data nodes.
- ``redis+cluster://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...]``: Cluster (db 0
  only). ``rediss+cluster://`` speaks TLS.

TLS options for the ``rediss`` forms: ``?ssl_ca_certs=PATH`` and
``?ssl_cert_reqs=required|optional|none`` (default required).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

from redis.connection import parse_url

from revocast.errors import SettingsError

Kind = Literal["single", "sentinel", "cluster"]
CertReqs = Literal["required", "optional", "none"]

ACCEPTED_FORMS = (
    "redis://HOST:PORT[/DB], rediss://..., unix:///PATH, "
    "redis+sentinel://HOST:PORT[,HOST:PORT...]/MASTER_NAME[/DB], "
    "redis+cluster://HOST:PORT[,HOST:PORT...]"
)
_SCHEMES: dict[str, tuple[Kind, bool]] = {
    "redis": ("single", False),
    "rediss": ("single", True),
    "unix": ("single", False),
    "redis+sentinel": ("sentinel", False),
    "rediss+sentinel": ("sentinel", True),
    "redis+cluster": ("cluster", False),
    "rediss+cluster": ("cluster", True),
}
_HOST_PORT = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):(\d{1,5})")
_NAME = re.compile(r"[A-Za-z0-9._-]{1,128}")
_OPTIONS = {"sentinel_password", "sentinel_username", "ssl_ca_certs", "ssl_cert_reqs"}


@dataclass(frozen=True, slots=True)
class RedisUrl:
    """A parsed ``REDIS_URL``; ``url`` is the original text (for single servers, redis-py's)."""

    kind: Kind
    url: str
    tls: bool = False
    nodes: tuple[tuple[str, int], ...] = ()  # sentinels, or cluster seed nodes
    master_name: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_username: str | None = None
    sentinel_password: str | None = None
    ssl_ca_certs: str | None = None
    ssl_cert_reqs: CertReqs = "required"

    def redacted(self) -> str:
        """The URL without its passwords, for logs."""
        return re.sub(r"(?<=://)[^@/]*@", "***@", self.url)

    def tls_options(self) -> dict[str, object]:
        """redis-py connection arguments for TLS (empty without it)."""
        if not self.tls:
            return {}
        options: dict[str, object] = {"ssl": True, "ssl_cert_reqs": self.ssl_cert_reqs}
        if self.ssl_ca_certs:
            options["ssl_ca_certs"] = self.ssl_ca_certs
        return options


def parse_redis_url(url: str) -> RedisUrl:
    """Parse and check a ``REDIS_URL``; SettingsError (one line, naming the forms) if wrong."""
    try:
        return _parse(url)
    except ValueError as exc:
        raise SettingsError(f"REDIS_URL {exc}; accepted forms: {ACCEPTED_FORMS}") from None


def _parse(url: str) -> RedisUrl:
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in _SCHEMES:
        raise ValueError(
            f"has an unknown scheme {scheme.lower()[:20]!r}" if sep else "is not a URL"
        )
    kind, tls = _SCHEMES[scheme.lower()]
    if kind == "single":
        return _single(url, tls)
    before_query, _, query = rest.partition("?")
    authority, _, path = before_query.partition("/")
    if "#" in url:
        raise ValueError("must not contain '#'")
    options = _options(query)
    username, password, hosts = _userinfo(authority)
    nodes = tuple(_host_port(part) for part in hosts.split(","))
    segments = [unquote(segment) for segment in path.split("/")] if path else []
    if (options.keys() & {"ssl_ca_certs", "ssl_cert_reqs"}) and not tls:
        raise ValueError("has TLS options but a plain scheme (use rediss+...)")
    if kind == "cluster":
        if segments not in ([], [""], ["0"]):
            raise ValueError("for a cluster takes no path (a cluster has only db 0)")
        if options.keys() & {"sentinel_password", "sentinel_username"}:
            raise ValueError("for a cluster takes no sentinel options")
        master_name, db = "", "0"
    else:
        if not segments or not _NAME.fullmatch(segments[0]) or len(segments) > 2:
            raise ValueError("for Sentinel needs /MASTER_NAME[/DB] after the sentinels")
        master_name, db = segments[0], segments[1] if len(segments) == 2 else "0"
        if not db.isdigit() or int(db) > 65535:
            raise ValueError(f"has a db {db[:10]!r} that is not a number")
    return RedisUrl(
        kind=kind,
        url=url,
        tls=tls,
        nodes=nodes,
        master_name=master_name,
        db=int(db),
        username=username,
        password=password,
        sentinel_username=options.get("sentinel_username"),
        sentinel_password=options.get("sentinel_password"),
        ssl_ca_certs=options.get("ssl_ca_certs"),
        ssl_cert_reqs=_cert_reqs(options.get("ssl_cert_reqs", "required")),
    )


def _single(url: str, tls: bool) -> RedisUrl:
    try:
        parsed = parse_url(url)  # type: ignore[no-untyped-call]
    except (ValueError, TypeError) as exc:
        raise ValueError(f"is not a valid single-server URL ({exc})") from None
    split = urlsplit(url)
    if not url.lower().startswith("unix://") and not split.hostname:
        raise ValueError("has no host")
    path = split.path.strip("/") if not url.lower().startswith("unix://") else ""
    if path and (not path.isdigit() or int(path) > 65535):
        # redis-py would take db 0 without a word: /abc or /1/2 name no database.
        raise ValueError(f"has a path {path[:20]!r} that is not a db number (redis://HOST:PORT/0)")
    return RedisUrl(kind="single", url=url, tls=tls, db=int(parsed.get("db", 0) or 0))


def _userinfo(authority: str) -> tuple[str | None, str | None, str]:
    credentials, at, hosts = authority.rpartition("@")
    if not at:
        return None, None, authority
    user, colon, password = credentials.partition(":")
    if not colon:  # redis://password@host is redis-py's reading too
        return None, unquote(user) or None, hosts
    return unquote(user) or None, unquote(password) or None, hosts


def _host_port(text: str) -> tuple[str, int]:
    match = _HOST_PORT.fullmatch(text.strip())
    if match is None or not 0 < int(match.group(2)) < 65536:
        raise ValueError(f"has a node {text[:60]!r} that is not HOST:PORT")
    return match.group(1).strip("[]"), int(match.group(2))


def _options(query: str) -> dict[str, str]:
    try:
        parsed = parse_qs(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise ValueError("has a malformed query string") from None
    unknown = sorted(parsed.keys() - _OPTIONS)
    if unknown:
        raise ValueError(f"has unknown options {unknown} (known: {sorted(_OPTIONS)})")
    return {name: values[-1] for name, values in parsed.items()}


def _cert_reqs(value: str) -> CertReqs:
    if value not in ("required", "optional", "none"):
        raise ValueError("ssl_cert_reqs must be required, optional or none")
    return value  # type: ignore[return-value]
