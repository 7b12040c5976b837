"""Settings read from the environment; see docs/configuration.md for the table."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Literal, get_args

from revocast.errors import SettingsError
from revocast.keyspace import MAX_PARTITIONS
from revocast.redis_url import parse_redis_url

FailMode = Literal["closed", "open"]
Environment = Literal["development", "production"]
SameSite = Literal["strict", "lax"]
JwsAlg = Literal["EdDSA", "Ed25519"]

# Environment variable for each field; REDIS_URL keeps its conventional name.
ENV_NAMES: dict[str, str] = {
    "redis_url": "REDIS_URL",
    "environment": "REVOCAST_ENV",
    "signing_key_pem": "REVOCAST_SIGNING_KEY",
    "issuer": "REVOCAST_ISSUER",
    "audience": "REVOCAST_AUDIENCE",
    "access_ttl_s": "REVOCAST_ACCESS_TTL_S",
    "refresh_ttl_s": "REVOCAST_REFRESH_TTL_S",
    "refresh_grace_s": "REVOCAST_REFRESH_GRACE_S",
    "max_staleness_s": "REVOCAST_MAX_STALENESS_S",
    "fail_mode": "REVOCAST_FAIL_MODE",
    "leeway_s": "REVOCAST_LEEWAY_S",
    "key_prefix": "REVOCAST_KEY_PREFIX",
    "key_dir": "REVOCAST_KEY_DIR",
    "max_body_bytes": "REVOCAST_MAX_BODY_BYTES",
    "max_header_bytes": "REVOCAST_MAX_HEADER_BYTES",
    "max_sessions_per_user": "REVOCAST_MAX_SESSIONS_PER_USER",
    "verify_memo_size": "REVOCAST_VERIFY_MEMO_SIZE",
    "clock_skew_s": "REVOCAST_CLOCK_SKEW_S",
    "allowed_origins": "REVOCAST_ALLOWED_ORIGINS",
    "trusted_proxies": "REVOCAST_TRUSTED_PROXIES",
    "jws_alg": "REVOCAST_JWS_ALG",
    "cookie_samesite": "REVOCAST_COOKIE_SAMESITE",
    "login_max_attempts_per_client": "REVOCAST_LOGIN_MAX_ATTEMPTS_PER_CLIENT",
    "login_max_failures_per_user_address": "REVOCAST_LOGIN_MAX_FAILURES_PER_USER_ADDRESS",
    "login_window_s": "REVOCAST_LOGIN_WINDOW_S",
    "revocations_per_minute": "REVOCAST_REVOCATIONS_PER_MINUTE",
    "ssf_max_queue": "REVOCAST_SSF_MAX_QUEUE",
    "login_max_failures_per_user": "REVOCAST_LOGIN_MAX_FAILURES_PER_USER",
    "login_user_max_delay_s": "REVOCAST_LOGIN_USER_MAX_DELAY_S",
    "login_user_memory_s": "REVOCAST_LOGIN_USER_MEMORY_S",
    "login_known_address_days": "REVOCAST_LOGIN_KNOWN_ADDRESS_DAYS",
    "argon2_time_cost": "REVOCAST_ARGON2_TIME_COST",
    "argon2_memory_kib": "REVOCAST_ARGON2_MEMORY_KIB",
    "argon2_parallelism": "REVOCAST_ARGON2_PARALLELISM",
    "password_workers": "REVOCAST_PASSWORD_WORKERS",
    "password_queue": "REVOCAST_PASSWORD_QUEUE",
    "partitions": "REVOCAST_PARTITIONS",
    "min_replicas": "REVOCAST_MIN_REPLICAS",
    "replica_ack_timeout_ms": "REVOCAST_REPLICA_ACK_TIMEOUT_MS",
    "read_from_replicas": "REVOCAST_READ_FROM_REPLICAS",
    "key_encryption_key": "REVOCAST_KEY_ENCRYPTION_KEY",
    "receipt_interval_ms": "REVOCAST_RECEIPT_INTERVAL_MS",
    "verifier_name": "REVOCAST_VERIFIER_NAME",
    "upstream_issuer": "REVOCAST_UPSTREAM_ISSUER",
    "upstream_audience": "REVOCAST_UPSTREAM_AUDIENCE",
    "upstream_jwks_url": "REVOCAST_UPSTREAM_JWKS_URL",
    "upstream_key": "REVOCAST_UPSTREAM_KEY",
    "upstream_algorithms": "REVOCAST_UPSTREAM_ALGORITHMS",
    "ssf_allowed_networks": "REVOCAST_SSF_ALLOWED_NETWORKS",
    "ssf_max_streams_per_owner": "REVOCAST_SSF_MAX_STREAMS_PER_OWNER",
}
MAX_SSF_STREAMS = 100  # SSF streams per deployment: each is served every 200 ms
# Partitions when REVOCAST_PARTITIONS is unset and the deployment has none yet: one primary
# gains nothing from more; a cluster spreads 6 evenly over 1, 2, 3 or 6 shards.
DEFAULT_PARTITIONS = {"single": 1, "sentinel": 1, "cluster": 6}
# REVOCAST_MAX_HEADER_BYTES: room for a 4 KiB token and its header line, up to 1 MiB.
MIN_HEADER_BYTES, DEFAULT_HEADER_BYTES, MAX_HEADER_BYTES = 8 * 1024, 64 * 1024, 1024 * 1024
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
MAX_REVOCATIONS_PER_MINUTE = 1_000_000
MAX_SSF_QUEUE = 10_000_000


@dataclass(frozen=True, slots=True)
class Settings:
    """Every tunable of issuer and verifier. Times are seconds unless the name says otherwise."""

    redis_url: str | None = None
    # production: the issuer never makes its first key itself (REVOCAST_SIGNING_KEY or the
    # key directory must hold one); development generates one when there is none.
    environment: Environment = "development"
    signing_key_pem: str | None = field(default=None, repr=False)  # an Ed25519 PEM, secret
    issuer: str = "revocast"
    audience: str = "revocast"
    access_ttl_s: int = 300  # 5 minutes
    refresh_ttl_s: int = 14 * 24 * 3600  # 14 days, sliding on each refresh
    refresh_grace_s: float = 10.0
    max_staleness_s: float = 5.0
    fail_mode: FailMode = "closed"
    leeway_s: float = 2.0
    key_prefix: str = "revocast"
    # Where the issuer keeps its private keys (0700): "" is default_key_dir(key_prefix); a
    # relative path, given explicitly, is taken from the working directory.
    key_dir: str = ""
    max_body_bytes: int = 16 * 1024
    # The request line and every header, in all (issuer and sidecar): past it, 431 before the
    # rest is read. A 4 KiB token and a few cookies fit many times over.
    max_header_bytes: int = DEFAULT_HEADER_BYTES
    max_sessions_per_user: int = 0  # 0: no limit; else the oldest session is revoked
    # Tokens whose signature a verifier remembers (about 1 KiB each); 0 checks every time.
    verify_memo_size: int = 10_000
    # Login throttling, counted in Redis before the password is checked (SECURITY.md); 0
    # turns a limit off. Hard limits, each for a window from its first attempt: attempts
    # per client address (an IPv6 /64), failures per username from one address.
    login_max_attempts_per_client: int = 100
    login_max_failures_per_user_address: int = 10
    login_window_s: int = 900  # 15 minutes
    # A soft one per username, from every address together: past this many failures, each
    # attempt from an address the user has not logged in from lately waits 1 s after the
    # one before, doubling with each failure up to the maximum; never a lock.
    login_max_failures_per_user: int = 10
    login_user_max_delay_s: int = 300  # 5 minutes
    login_user_memory_s: int = 24 * 3600  # a username's count, after its last attempt
    login_known_address_days: int = 30  # since the last login from it; 0: none is known
    # Revocations that write an event, per actor (the user, or the moderator acting) and
    # partition, in a fixed minute; past it 429. Repeats that write nothing are not counted;
    # operators (the CLI) are not limited. 0: no limit.
    revocations_per_minute: int = 60
    # Unacknowledged events an SSF stream's queue holds before copying into it pauses.
    ssf_max_queue: int = 100_000
    # Browser mode: origins allowed to send cookie-authenticated state-changing requests
    # (besides the request's own origin), and the cookies' SameSite.
    allowed_origins: tuple[str, ...] = ()
    cookie_samesite: SameSite = "strict"
    # Peers (addresses or CIDRs) whose forwarded headers count (revocast.proxies): for the
    # issuer, X-Forwarded-For and -Proto say who the client is; for the sidecar,
    # X-Forwarded-Method, -Host and -Proto what the request being authorized was. Nobody
    # else's are read.
    trusted_proxies: tuple[str, ...] = ()
    # The alg the issuer writes in token headers: EdDSA, or RFC 9864's Ed25519 (verifiers
    # accept both for an Ed25519 key).
    jws_alg: JwsAlg = "EdDSA"
    # For chaos tests only: this process pretends its clock is off by this much.
    clock_skew_s: float = 0.0
    # argon2id, RFC 9106 second recommendation: t=3 passes over 64 MiB, 4 lanes.
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 64 * 1024
    argon2_parallelism: int = 4
    # Password checks run on this many threads (0: one per CPU); at most password_queue more
    # wait for one, and past that a login is refused at once (503, Retry-After) rather than
    # queued until its client gives up.
    password_workers: int = 0
    password_queue: int = 32
    # Users and sessions are spread over this many partitions (hash tags), fixed when the
    # deployment first starts; 0 takes the stored count, or DEFAULT_PARTITIONS for a new one.
    partitions: int = 0
    # Replicas that must confirm a revocation before it is acknowledged (WAIT); None: 0 on a
    # single server, 1 on Sentinel and Cluster.
    min_replicas: int | None = None
    replica_ack_timeout_ms: int = 500
    # Verifiers snapshot and follow on replicas (freshness then comes from the heartbeat).
    read_from_replicas: bool = False
    # 32 bytes, base64url: issuers seal their private keys in Redis under it, so that every
    # issuer can sign with a key rotated in anywhere. Unset: keys live in key_dir only.
    key_encryption_key: str | None = field(default=None, repr=False)
    # Verifiers write a receipt (where they stand on each stream) at most this often, soon
    # after applying entries; revokers read them to prove a revocation took effect. 0: off
    # (such a verifier is invisible to the proof).
    receipt_interval_ms: int = 250
    # How a verifier names itself in receipts; empty: host:pid.
    verifier_name: str = ""
    # An upstream IdP whose back-channel logout tokens and CAEP events end sessions here
    # (docs/identity-providers.md): its issuer, the audience its tokens name (revocast's
    # client id there), its keys (a JWKS URL, or one public key as PEM or JWK) and the
    # algorithms accepted (asymmetric only).
    upstream_issuer: str = ""
    upstream_audience: str = ""
    upstream_jwks_url: str = ""
    upstream_key: str = field(default="", repr=False)
    upstream_algorithms: tuple[str, ...] = ("RS256", "ES256", "EdDSA")
    # SSF push delivery connects only to public addresses that are not the issuer host's;
    # these networks (CIDRs, e.g. 10.1.0.0/16) are allowed besides, whatever they are.
    ssf_allowed_networks: tuple[str, ...] = ()
    # SSF streams one account (the token's sub) may hold, of the deployment's MAX_SSF_STREAMS.
    ssf_max_streams_per_owner: int = 10

    def __post_init__(self) -> None:
        if self.redis_url is not None:
            parse_redis_url(self.redis_url)  # a one-line SettingsError naming the forms
        if not 0 <= self.partitions <= MAX_PARTITIONS:
            raise SettingsError(f"REVOCAST_PARTITIONS must be 1 to {MAX_PARTITIONS} (0: default)")
        if self.min_replicas is not None and not 0 <= self.min_replicas <= 16:
            raise SettingsError("REVOCAST_MIN_REPLICAS must be 0 to 16")
        if not 1 <= self.replica_ack_timeout_ms <= 60_000:
            raise SettingsError("REVOCAST_REPLICA_ACK_TIMEOUT_MS must be 1 to 60000")
        if self.key_encryption_key is not None:
            key_encryption_key_bytes(self.key_encryption_key)
        if self.access_ttl_s <= 0 or self.refresh_ttl_s <= 0:
            raise SettingsError("token lifetimes must be positive")
        if self.refresh_ttl_s < self.access_ttl_s:
            raise SettingsError("refresh TTL must be at least the access-token TTL")
        if not 0 <= self.refresh_grace_s <= 60:
            raise SettingsError("refresh grace must be between 0 and 60 seconds")
        if self.max_staleness_s <= 0:
            raise SettingsError("max staleness must be positive")
        if not 0 <= self.leeway_s <= 60:
            raise SettingsError("leeway must be between 0 and 60 seconds")
        if self.cookie_samesite not in get_args(SameSite):
            raise SettingsError(f"cookie SameSite must be one of {get_args(SameSite)}")
        if any(not origin.startswith(("https://", "http://")) for origin in self.allowed_origins):
            raise SettingsError("allowed origins look like https://app.example.com")
        try:
            for proxy in self.trusted_proxies:
                ipaddress.ip_network(proxy, strict=False)
        except ValueError as exc:
            raise SettingsError(
                f"trusted proxies are addresses or CIDRs, like 10.0.0.0/8,::1: {exc}"
            ) from None
        for network in self.ssf_allowed_networks:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise SettingsError(
                    f"REVOCAST_SSF_ALLOWED_NETWORKS takes addresses or CIDRs separated by "
                    f"commas, like 10.1.0.0/16,fd00::/8; {network[:64]!r} is neither"
                ) from None
        if not 1 <= self.ssf_max_streams_per_owner <= MAX_SSF_STREAMS:
            raise SettingsError(
                f"REVOCAST_SSF_MAX_STREAMS_PER_OWNER must be 1 to {MAX_SSF_STREAMS} (the "
                "streams a deployment holds): set it in that range, or leave it unset (10)"
            )
        if self.jws_alg not in get_args(JwsAlg):
            raise SettingsError(f"REVOCAST_JWS_ALG must be one of {get_args(JwsAlg)}")
        if self.environment not in get_args(Environment):
            raise SettingsError(f"REVOCAST_ENV must be one of {get_args(Environment)}")
        if self.fail_mode not in get_args(FailMode):
            raise SettingsError(f"fail mode must be one of {get_args(FailMode)}")
        if not self.key_prefix or any(c in self.key_prefix for c in " {}"):
            raise SettingsError("key prefix must be non-empty, without spaces or braces")
        self._check_login_throttle()
        if not 0 <= self.revocations_per_minute <= MAX_REVOCATIONS_PER_MINUTE:
            raise SettingsError(
                f"REVOCAST_REVOCATIONS_PER_MINUTE must be 0 (no limit) to "
                f"{MAX_REVOCATIONS_PER_MINUTE}, got {self.revocations_per_minute}: set a whole "
                "number of revocations per caller and minute"
            )
        if not 1 <= self.ssf_max_queue <= MAX_SSF_QUEUE:
            raise SettingsError(
                f"REVOCAST_SSF_MAX_QUEUE must be 1 to {MAX_SSF_QUEUE}, got {self.ssf_max_queue}:"
                " set how many unacknowledged events a receiver's queue may hold"
            )
        if not (self.receipt_interval_ms == 0 or 10 <= self.receipt_interval_ms <= 10_000):
            raise SettingsError("REVOCAST_RECEIPT_INTERVAL_MS must be 0 (off) or 10 to 10000")
        if len(self.verifier_name) > 128:
            raise SettingsError("REVOCAST_VERIFIER_NAME is at most 128 characters")
        if self.verify_memo_size < 0:
            raise SettingsError("verify memo size must be 0 or more")
        if self.max_sessions_per_user < 0:
            raise SettingsError("max sessions per user must be 0 (no limit) or more")
        if self.max_body_bytes < 256:
            raise SettingsError("max body bytes must be at least 256")
        if not MIN_HEADER_BYTES <= self.max_header_bytes <= MAX_HEADER_BYTES:
            raise SettingsError(
                f"REVOCAST_MAX_HEADER_BYTES must be {MIN_HEADER_BYTES} to {MAX_HEADER_BYTES} "
                "(bytes of the request line and headers in all; default 65536): an access token "
                "alone takes up to 4 KiB"
            )
        if self.argon2_time_cost < 1 or self.argon2_parallelism < 1:
            raise SettingsError("argon2 time cost and parallelism must be at least 1")
        if self.argon2_memory_kib < 8 * self.argon2_parallelism:
            raise SettingsError("argon2 memory must be at least 8 KiB per lane")
        if not 0 <= self.password_workers <= 256:
            raise SettingsError("REVOCAST_PASSWORD_WORKERS must be 0 (one per CPU) to 256")
        if not 0 <= self.password_queue <= 100_000:
            raise SettingsError("REVOCAST_PASSWORD_QUEUE must be 0 to 100000")

    def _check_login_throttle(self) -> None:
        for name in ("login_max_attempts_per_client", "login_max_failures_per_user_address",
                     "login_max_failures_per_user"):  # fmt: skip
            if getattr(self, name) < 0:
                raise SettingsError(f"{ENV_NAMES[name]} must be 0 (off) or more")
        if not 1 <= self.login_window_s <= 86_400:
            raise SettingsError("REVOCAST_LOGIN_WINDOW_S must be 1 to 86400 seconds")
        if not 1 <= self.login_user_max_delay_s <= 3600:
            raise SettingsError("REVOCAST_LOGIN_USER_MAX_DELAY_S must be 1 to 3600 seconds")
        if not self.login_window_s <= self.login_user_memory_s <= 30 * 86_400:
            # An unlock voids the per-address counts through this memory: it must outlast them.
            raise SettingsError(
                "REVOCAST_LOGIN_USER_MEMORY_S must be from REVOCAST_LOGIN_WINDOW_S "
                f"({self.login_window_s}) to 2592000 seconds (30 days)"
            )
        if not 0 <= self.login_known_address_days <= 365:
            raise SettingsError("REVOCAST_LOGIN_KNOWN_ADDRESS_DAYS must be 0 (none) to 365")

    def key_path(self) -> Path:
        """The key directory, always absolute: every command finds the same keys wherever
        it runs."""
        if self.key_dir:
            return Path(self.key_dir).expanduser().absolute()
        return default_key_dir(self.key_prefix)

    def wall_clock(self) -> Callable[[], float]:
        """``time.time``, shifted by ``clock_skew_s`` when a chaos test asks for it."""
        skew = self.clock_skew_s
        return time.time if skew == 0 else lambda: time.time() + skew

    @property
    def revocation_lifetime_ms(self) -> int:
        """How long a revocation must be remembered: every token it covers is expired by then."""
        return int((self.access_ttl_s + 2 * self.leeway_s) * 1000) + 1000

    @property
    def stream_retention_ms(self) -> int:
        """Events older than this are trimmed; at least one access-token lifetime is kept."""
        return self.revocation_lifetime_ms + 60_000

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from environment variables, failing with a clear message."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for setting in fields(cls):
            raw = env.get(ENV_NAMES[setting.name])
            if raw is None or raw == "":
                continue
            values[setting.name] = _parse(setting.name, setting.type, raw)
        return cls(**values)  # type: ignore[arg-type]

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


def default_key_dir(key_prefix: str) -> Path:
    """``$XDG_DATA_HOME/revocast/keys/PREFIX``, else ``~/.local/share/revocast/keys/PREFIX``:
    one folder per deployment (its key prefix), so that two deployments on one machine never
    publish each other's keys, nor mistake the other's epoch for a data loss."""
    data = os.environ.get("XDG_DATA_HOME", "")
    if data and Path(data).is_absolute():
        return Path(data) / "revocast" / "keys" / key_prefix
    try:
        return Path.home() / ".local" / "share" / "revocast" / "keys" / key_prefix
    except RuntimeError:
        raise SettingsError(
            "no home directory to keep signing keys in: set REVOCAST_KEY_DIR to a folder"
        ) from None


def key_encryption_key_bytes(text: str) -> bytes:
    """The 32-byte key of REVOCAST_KEY_ENCRYPTION_KEY (base64url); SettingsError if it is not."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, binascii.Error):
        raw = b""
    if len(raw) != 32:
        raise SettingsError(
            "REVOCAST_KEY_ENCRYPTION_KEY must be 32 random bytes in base64url, e.g. from "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
        )
    return raw


def _parse(name: str, annotation: object, raw: str) -> object:
    if annotation == "bool":
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise SettingsError(f"{ENV_NAMES[name]} must be 1 or 0, got {raw!r}")
    try:
        if annotation in ("int", "int | None"):
            return int(raw)
        if annotation == "float":
            return float(raw)
        if annotation == "tuple[str, ...]":
            return tuple(part.strip() for part in raw.split(",") if part.strip())
    except ValueError:
        raise SettingsError(f"{ENV_NAMES[name]} must be a number, got {raw!r}") from None
    return raw
