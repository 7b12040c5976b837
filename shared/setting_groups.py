"""The groups of settings, one per concern: each declares its fields once (``setting(...)``,
see ``revocast.setting``), checks them when it is built and holds the rules between its own
fields. ``revocast.settings.Settings`` composes them and holds the rules between groups.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from revocast.errors import SettingsError
from revocast.keyspace import MAX_PARTITIONS
from revocast.lifetimes import STATUS_LIST_TTL_MAX_S
from revocast.redis_url import parse_redis_url
from revocast.setting import check_fields, setting

FailMode = Literal["closed", "open"]
Environment = Literal["development", "production"]
SameSite = Literal["strict", "lax"]
JwsAlg = Literal["EdDSA", "Ed25519"]
StatusListMode = Literal["off", "fallback"]
SharedCache = Literal["auto", "1", "0"]

MAX_SSF_STREAMS = 100  # SSF streams per deployment: each is served every 200 ms
# Partitions when REVOCAST_PARTITIONS is unset and the deployment has none yet: one primary
# gains nothing from more; a cluster spreads 6 evenly over 1, 2, 3 or 6 shards.
DEFAULT_PARTITIONS = {"single": 1, "sentinel": 1, "cluster": 6}
# REVOCAST_MAX_HEADER_BYTES: room for a 4 KiB token and its header line, up to 1 MiB.
MIN_HEADER_BYTES, DEFAULT_HEADER_BYTES, MAX_HEADER_BYTES = 8 * 1024, 64 * 1024, 1024 * 1024
MAX_REVOCATIONS_PER_MINUTE = 1_000_000
MAX_SSF_QUEUE = 10_000_000
DAY_S = 86_400


def _networks(values: tuple[str, ...]) -> str | None:
    for value in values:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            return (f"addresses or CIDRs separated by commas (10.0.0.0/8,::1); {value[:64]!r} "
                    "is neither")  # fmt: skip
    return None


def _origins(values: tuple[str, ...]) -> str | None:
    bad = [v for v in values if not v.startswith(("https://", "http://"))]
    if bad:
        return f"origins like https://app.example.com, separated by commas; {bad[0][:64]!r} is not"
    return None


def _key_prefix(value: str) -> str | None:
    if not value or any(c in value for c in " {}"):
        return "non-empty, without spaces or braces"
    return None


def _key_encryption_key(value: str | None) -> str | None:
    if value is not None:
        key_encryption_key_bytes(value)  # its own message says how to make one
    return None


def _redis_url(value: str | None) -> str | None:
    if value is not None:
        parse_redis_url(value)  # a one-line SettingsError naming the forms
    return None


def _at_most(characters: int) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        return f"at most {characters} characters" if len(value) > characters else None

    return check


@dataclass(frozen=True, slots=True)
class RedisSettings:
    """Where the deployment's Redis is, its key prefix and partitions, and how writes wait
    for replicas."""

    redis_url: str | None = setting(None, "REDIS_URL", check=_redis_url)
    key_prefix: str = setting("revocast", "REVOCAST_KEY_PREFIX", check=_key_prefix)
    # Users and sessions are spread over this many partitions (hash tags), fixed when the
    # deployment first starts; 0 takes the stored count, or DEFAULT_PARTITIONS for a new one.
    partitions: int = setting(0, "REVOCAST_PARTITIONS", low=1, high=MAX_PARTITIONS, off=0,
                              off_means="the deployment's, or the default",
                              shown_default="unset")  # fmt: skip
    # Replicas that must confirm a revocation before it is acknowledged (WAIT); None: 0 on a
    # single server, 1 on Sentinel and Cluster.
    min_replicas: int | None = setting(None, "REVOCAST_MIN_REPLICAS", low=0, high=16,
                                       shown_default="0 on one server")  # fmt: skip
    replica_ack_timeout_ms: int = setting(500, "REVOCAST_REPLICA_ACK_TIMEOUT_MS", low=1,
                                          high=60_000, unit="ms")  # fmt: skip
    # Verifiers snapshot and follow on replicas (freshness then comes from the heartbeat).
    read_from_replicas: bool = setting(False, "REVOCAST_READ_FROM_REPLICAS")

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(frozen=True, slots=True)
class TokenSettings:
    """What the issuer writes in its tokens and how long they live; what verifiers check."""

    issuer: str = setting("revocast", "REVOCAST_ISSUER", check=_at_most(2048))
    audience: str = setting("revocast", "REVOCAST_AUDIENCE", check=_at_most(2048))
    access_ttl_s: int = setting(300, "REVOCAST_ACCESS_TTL_S", low=1, high=DAY_S, unit="seconds")
    # 14 days, sliding on each refresh.
    refresh_ttl_s: int = setting(14 * DAY_S, "REVOCAST_REFRESH_TTL_S", low=1, high=365 * DAY_S,
                                 unit="seconds")  # fmt: skip
    refresh_grace_s: float = setting(10.0, "REVOCAST_REFRESH_GRACE_S", low=0, high=60,
                                     unit="seconds")  # fmt: skip
    leeway_s: float = setting(2.0, "REVOCAST_LEEWAY_S", low=0, high=60, unit="seconds")
    # The alg the issuer writes in token headers: EdDSA, or RFC 9864's Ed25519 (verifiers
    # accept both for an Ed25519 key).
    jws_alg: JwsAlg = setting("EdDSA", "REVOCAST_JWS_ALG")

    def __post_init__(self) -> None:
        check_fields(self)
        if self.refresh_ttl_s < self.access_ttl_s:
            raise SettingsError(
                f"REVOCAST_REFRESH_TTL_S ({self.refresh_ttl_s}) must be at least "
                f"REVOCAST_ACCESS_TTL_S ({self.access_ttl_s}): a session must outlive its tokens"
            )

    @property
    def revocation_lifetime_ms(self) -> int:
        """How long a revocation must be remembered: every token it covers is expired by then."""
        return int((self.access_ttl_s + 2 * self.leeway_s) * 1000) + 1000

    @property
    def stream_retention_ms(self) -> int:
        """Events older than this are trimmed; at least one access-token lifetime is kept."""
        return self.revocation_lifetime_ms + 60_000


@dataclass(frozen=True, slots=True)
class SigningSettings:
    """Where the issuer's private keys come from and where it keeps them."""

    # An Ed25519 PEM, secret.
    signing_key_pem: str | None = setting(None, "REVOCAST_SIGNING_KEY", secret=True)
    # Where the issuer keeps its private keys (0700): "" is default_key_dir(key_prefix); a
    # relative path, given explicitly, is taken from the working directory.
    key_dir: str = setting(
        "", "REVOCAST_KEY_DIR", shown_default="`$XDG_DATA_HOME/revocast/keys/PREFIX`"
    )
    # 32 bytes, base64url: issuers seal their private keys in Redis under it, so that every
    # issuer can sign with a key rotated in anywhere. Unset: keys live in key_dir only.
    key_encryption_key: str | None = setting(None, "REVOCAST_KEY_ENCRYPTION_KEY",
                                             check=_key_encryption_key, secret=True)  # fmt: skip

    def __post_init__(self) -> None:
        check_fields(self)

    def key_path(self, key_prefix: str) -> Path:
        """The key directory, always absolute: every command finds the same keys wherever
        it runs."""
        if self.key_dir:
            return Path(self.key_dir).expanduser().absolute()
        return default_key_dir(key_prefix)


@dataclass(frozen=True, slots=True)
class DeploymentSettings:
    """What kind of deployment this is, and this process's clock."""

    # production: the issuer never makes its first key itself (REVOCAST_SIGNING_KEY or the
    # key directory must hold one), and refuses an issuer that is not a URL, or SSF push
    # over plain HTTP; development generates a key when there is none.
    environment: Environment = setting("development", "REVOCAST_ENV")
    # For chaos tests only: this process pretends its clock is off by this much.
    clock_skew_s: float = setting(0.0, "REVOCAST_CLOCK_SKEW_S", low=-3600, high=3600,
                                  unit="seconds")  # fmt: skip

    def __post_init__(self) -> None:
        check_fields(self)

    def wall_clock(self) -> Callable[[], float]:
        """``time.time``, shifted by ``clock_skew_s`` when a chaos test asks for it."""
        skew = self.clock_skew_s
        return time.time if skew == 0 else lambda: time.time() + skew


@dataclass(frozen=True, slots=True)
class FreshnessSettings:
    """How stale a verifier may be before it stops answering, and how it answers then."""

    # Never above the access-token lifetime (checked by Settings): a verifier staler than
    # that may have missed the revocation of every token it accepts.
    max_staleness_s: float = setting(5.0, "REVOCAST_MAX_STALENESS_S", low=0.01, high=DAY_S,
                                     unit="seconds")  # fmt: skip
    fail_mode: FailMode = setting("closed", "REVOCAST_FAIL_MODE")
    # Tokens whose signature a verifier remembers (about 1 KiB each); 0 checks every time.
    verify_memo_size: int = setting(
        10_000, "REVOCAST_VERIFY_MEMO_SIZE", off=0, low=1, high=10_000_000
    )

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(frozen=True, slots=True)
class StatusListSettings:
    """Token Status Lists (docs/status-lists.md): served when REVOCAST_ISSUER is a URL."""

    # How long a reader may use one (its ttl and exp); bounded, as a freed index rests only
    # that long and a second before it is drawn again (lifetimes.STATUS_INDEX_REST_MS).
    status_list_ttl_s: int = setting(5, "REVOCAST_STATUS_LIST_TTL_S", low=1,
                                     high=STATUS_LIST_TTL_MAX_S, unit="seconds")  # fmt: skip
    # fallback: a verifier whose streams are stale keeps answering from the issuer's lists
    # while they are younger than their ttl (README, Guarantees).
    status_list: StatusListMode = setting("off", "REVOCAST_STATUS_LIST")

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(frozen=True, slots=True)
class VerifierSettings:
    """How a verifier shares its table with the others on its host, names itself, and
    reports where it stands."""

    # One follower and table per host (revocast.verifier.host); auto: on for the workers of
    # `revocast verifier --workers N`, off for a verifier embedded in one process.
    shared_cache: SharedCache = setting("auto", "REVOCAST_SHARED_CACHE")
    shared_cache_max_entries: int = setting(4_000_000, "REVOCAST_SHARED_CACHE_MAX_ENTRIES",
                                            low=1000, high=1_000_000_000)  # fmt: skip
    # How a verifier names itself in receipts; empty: host:pid.
    verifier_name: str = setting("", "REVOCAST_VERIFIER_NAME", check=_at_most(128),
                                 shown_default="`<role> <host>:<pid>`")  # fmt: skip
    # Verifiers write a receipt (where they stand on each stream) at most this often, soon
    # after applying entries; revokers read them to prove a revocation took effect. 0: off
    # (such a verifier is invisible to the proof).
    receipt_interval_ms: int = setting(250, "REVOCAST_RECEIPT_INTERVAL_MS", low=10, high=10_000,
                                       off=0, unit="ms")  # fmt: skip

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(frozen=True, slots=True)
class HttpSettings:
    """Bounds on what an HTTP request may send, and whose forwarded headers count."""

    max_body_bytes: int = setting(16 * 1024, "REVOCAST_MAX_BODY_BYTES", low=256,
                                  high=16 * 1024 * 1024, unit="bytes")  # fmt: skip
    # The request line and every header, in all (issuer and sidecar): past it, 431 before the
    # rest is read. A 4 KiB token and a few cookies fit many times over.
    max_header_bytes: int = setting(DEFAULT_HEADER_BYTES, "REVOCAST_MAX_HEADER_BYTES",
                                    low=MIN_HEADER_BYTES, high=MAX_HEADER_BYTES,
                                    unit="bytes")  # fmt: skip
    # Peers (addresses or CIDRs) whose forwarded headers count (revocast.proxies): for the
    # issuer, X-Forwarded-For and -Proto say who the client is; for the sidecar,
    # X-Forwarded-Method, -Host and -Proto what the request being authorized was. Nobody
    # else's are read.
    trusted_proxies: tuple[str, ...] = setting((), "REVOCAST_TRUSTED_PROXIES", check=_networks)

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(frozen=True, slots=True)
class BrowserSettings:
    """Browser mode: origins allowed to send cookie-authenticated state-changing requests
    (besides the request's own origin), and the cookies' SameSite."""

    allowed_origins: tuple[str, ...] = setting((), "REVOCAST_ALLOWED_ORIGINS", check=_origins)
    cookie_samesite: SameSite = setting("strict", "REVOCAST_COOKIE_SAMESITE")

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(frozen=True, slots=True)
class LoginThrottle:
    """Login throttling, counted in Redis before the password is checked (SECURITY.md); 0
    turns a limit off."""

    # Hard limits, each for a window from its first attempt: attempts per client address (an
    # IPv6 /64), failures per username from one address.
    login_max_attempts_per_client: int = setting(
        100, "REVOCAST_LOGIN_MAX_ATTEMPTS_PER_CLIENT", off=0, low=1, high=1_000_000
    )
    login_max_failures_per_user_address: int = setting(
        10, "REVOCAST_LOGIN_MAX_FAILURES_PER_USER_ADDRESS", off=0, low=1, high=1_000_000
    )
    login_window_s: int = setting(900, "REVOCAST_LOGIN_WINDOW_S", low=1, high=DAY_S,
                                  unit="seconds")  # fmt: skip
    # A soft one per username, from every address together: past this many failures, each
    # attempt from an address the user has not logged in from lately waits 1 s after the
    # one before, doubling with each failure up to the maximum; never a lock.
    login_max_failures_per_user: int = setting(
        10, "REVOCAST_LOGIN_MAX_FAILURES_PER_USER", off=0, low=1, high=1_000_000
    )
    login_user_max_delay_s: int = setting(300, "REVOCAST_LOGIN_USER_MAX_DELAY_S", low=1,
                                          high=3600, unit="seconds")  # fmt: skip
    # A username's count, after its last attempt; at least the window (checked below): an
    # unlock voids the per-address counts through it.
    login_user_memory_s: int = setting(DAY_S, "REVOCAST_LOGIN_USER_MEMORY_S", low=1,
                                       high=30 * DAY_S, unit="seconds")  # fmt: skip
    # Since the last login from it; 0: none is known.
    login_known_address_days: int = setting(30, "REVOCAST_LOGIN_KNOWN_ADDRESS_DAYS", off=0,
                                            off_means="none", low=1, high=365,
                                            unit="days")  # fmt: skip

    def __post_init__(self) -> None:
        check_fields(self)
        if self.login_user_memory_s < self.login_window_s:
            raise SettingsError(
                f"REVOCAST_LOGIN_USER_MEMORY_S ({self.login_user_memory_s}) must be at least "
                f"REVOCAST_LOGIN_WINDOW_S ({self.login_window_s}): an unlock forgives the "
                "per-address counts through it"
            )


@dataclass(frozen=True, slots=True)
class PasswordSettings:
    """How passwords are hashed (argon2id) and how many checks run at once."""

    # RFC 9106 second recommendation: t=3 passes over 64 MiB, 4 lanes.
    argon2_time_cost: int = setting(3, "REVOCAST_ARGON2_TIME_COST", low=1, high=100)
    argon2_memory_kib: int = setting(64 * 1024, "REVOCAST_ARGON2_MEMORY_KIB", low=8,
                                     high=4 * 1024 * 1024, unit="KiB")  # fmt: skip
    argon2_parallelism: int = setting(4, "REVOCAST_ARGON2_PARALLELISM", low=1, high=64)
    # Password checks run on this many threads (0: one per CPU); at most password_queue more
    # wait for one, and past that a login is refused at once (503, Retry-After) rather than
    # queued until its client gives up.
    password_workers: int = setting(
        0, "REVOCAST_PASSWORD_WORKERS", off=0, off_means="one per CPU", low=1, high=256
    )
    password_queue: int = setting(32, "REVOCAST_PASSWORD_QUEUE", low=0, high=100_000)

    def __post_init__(self) -> None:
        check_fields(self)
        if self.argon2_memory_kib < 8 * self.argon2_parallelism:
            raise SettingsError(
                f"REVOCAST_ARGON2_MEMORY_KIB ({self.argon2_memory_kib}) must be at least 8 KiB "
                f"per lane of REVOCAST_ARGON2_PARALLELISM ({self.argon2_parallelism})"
            )


@dataclass(frozen=True, slots=True)
class SessionLimits:
    """How many sessions a user may hold, and how fast revocations may be written."""

    # 0: no limit; else the oldest session is revoked.
    max_sessions_per_user: int = setting(0, "REVOCAST_MAX_SESSIONS_PER_USER", off=0,
                                         off_means="no limit", low=1, high=100_000)  # fmt: skip
    # Revocations that write an event, per actor (the user, or the moderator acting) and
    # partition, in a fixed minute; past it 429. Repeats that write nothing are not counted;
    # operators (the CLI) are not limited. 0: no limit.
    revocations_per_minute: int = setting(60, "REVOCAST_REVOCATIONS_PER_MINUTE", off=0,
                                          off_means="no limit", low=1,
                                          high=MAX_REVOCATIONS_PER_MINUTE)  # fmt: skip

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(frozen=True, slots=True)
class SsfSettings:
    """Shared Signals streams: how many, how deep their queues, where push may reach."""

    # Unacknowledged events an SSF stream's queue holds before copying into it pauses.
    ssf_max_queue: int = setting(100_000, "REVOCAST_SSF_MAX_QUEUE", low=1, high=MAX_SSF_QUEUE)
    # Networks SSF push may reach besides public addresses (revocast.issuer.ssf_targets).
    ssf_allowed_networks: tuple[str, ...] = setting((), "REVOCAST_SSF_ALLOWED_NETWORKS",
                                                    check=_networks)  # fmt: skip
    ssf_max_streams_per_owner: int = setting(10, "REVOCAST_SSF_MAX_STREAMS_PER_OWNER", low=1,
                                             high=MAX_SSF_STREAMS)  # fmt: skip

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(frozen=True, slots=True)
class UpstreamSettings:
    """An upstream IdP whose back-channel logout tokens and CAEP events end sessions here
    (docs/identity-providers.md): its issuer, the audience its tokens name (revocast's
    client id there), its keys (a JWKS URL, or one public key as PEM or JWK) and the
    algorithms accepted (asymmetric only)."""

    upstream_issuer: str = setting("", "REVOCAST_UPSTREAM_ISSUER")
    upstream_audience: str = setting("", "REVOCAST_UPSTREAM_AUDIENCE")
    upstream_jwks_url: str = setting("", "REVOCAST_UPSTREAM_JWKS_URL")
    upstream_key: str = setting("", "REVOCAST_UPSTREAM_KEY", secret=True)
    upstream_algorithms: tuple[str, ...] = setting(("RS256", "ES256", "EdDSA"),
                                                   "REVOCAST_UPSTREAM_ALGORITHMS")  # fmt: skip

    def __post_init__(self) -> None:
        check_fields(self)


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
