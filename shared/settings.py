"""Settings read from the environment; see docs/configuration.md for the table.

``Settings`` is the composite of small frozen groups, one per concern (Redis, tokens,
freshness, throttle, SSF...): each group declares its fields once (``setting(...)``, in
``revocast.setting``), checks them when it is built and holds the rules between its own
fields; a rule between two groups lives in ``Settings``. A module takes the group it reads
(``TokenSettings``, ``PasswordSettings``...); the service edges take ``Settings``.
``tests/test_configuration_doc.py`` holds docs/configuration.md to the same declarations.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import Field, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, cast

from revocast.errors import SettingsError
from revocast.setting import Spec, check_value, declared, read_env
from revocast.setting_groups import (
    DEFAULT_HEADER_BYTES,
    DEFAULT_PARTITIONS,
    MAX_SSF_STREAMS,
    BrowserSettings,
    DeploymentSettings,
    Environment,
    FailMode,
    FreshnessSettings,
    HttpSettings,
    JwsAlg,
    LoginThrottle,
    PasswordSettings,
    RedisSettings,
    SameSite,
    SessionLimits,
    SharedCache,
    SigningSettings,
    SsfSettings,
    StatusListMode,
    StatusListSettings,
    TokenSettings,
    UpstreamSettings,
    VerifierSettings,
    default_key_dir,
    key_encryption_key_bytes,
)

__all__ = [
    "DEFAULT_HEADER_BYTES",
    "DEFAULT_PARTITIONS",
    "ENV_NAMES",
    "GROUP_OF",
    "MAX_SSF_STREAMS",
    "BrowserSettings",
    "DeploymentSettings",
    "Environment",
    "FailMode",
    "FreshnessSettings",
    "HttpSettings",
    "JwsAlg",
    "LoginThrottle",
    "PasswordSettings",
    "RedisSettings",
    "SameSite",
    "SessionLimits",
    "Settings",
    "SharedCache",
    "SigningSettings",
    "Spec",
    "SsfSettings",
    "StatusListMode",
    "StatusListSettings",
    "TokenSettings",
    "UpstreamSettings",
    "VerifierSettings",
    "check_value",
    "default_key_dir",
    "field_of",
    "key_encryption_key_bytes",
    "specs",
]


@dataclass(frozen=True, slots=True)
class Settings:
    """Every tunable of issuer and verifier, by concern. Times are seconds unless the name
    says otherwise."""

    redis: RedisSettings = field(default_factory=RedisSettings)
    tokens: TokenSettings = field(default_factory=TokenSettings)
    signing: SigningSettings = field(default_factory=SigningSettings)
    deployment: DeploymentSettings = field(default_factory=DeploymentSettings)
    freshness: FreshnessSettings = field(default_factory=FreshnessSettings)
    status_lists: StatusListSettings = field(default_factory=StatusListSettings)
    verifier: VerifierSettings = field(default_factory=VerifierSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    browser: BrowserSettings = field(default_factory=BrowserSettings)
    throttle: LoginThrottle = field(default_factory=LoginThrottle)
    passwords: PasswordSettings = field(default_factory=PasswordSettings)
    limits: SessionLimits = field(default_factory=SessionLimits)
    ssf: SsfSettings = field(default_factory=SsfSettings)
    upstream: UpstreamSettings = field(default_factory=UpstreamSettings)

    def __post_init__(self) -> None:
        # Between groups: each message names both settings.
        staleness, access_ttl_s = self.freshness.max_staleness_s, self.tokens.access_ttl_s
        if staleness > access_ttl_s:
            raise SettingsError(
                f"REVOCAST_MAX_STALENESS_S ({staleness:g}) must be at most "
                f"REVOCAST_ACCESS_TTL_S ({access_ttl_s}): a verifier staler than a token's "
                "lifetime may have missed the revocation of any token it accepts"
            )
        issuer = self.tokens.issuer
        if self.status_lists.status_list == "fallback" and not issuer.startswith(
            ("https://", "http://")
        ):
            raise SettingsError(
                f"REVOCAST_STATUS_LIST=fallback reads the lists under REVOCAST_ISSUER, which is "
                f"{issuer[:100]!r}, not a URL: set it to the issuer's URL, or unset "
                "REVOCAST_STATUS_LIST"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from environment variables, failing with a clear message."""
        env = os.environ if environ is None else environ
        groups = {item.name: _group_type(item)(**read_env(_group_type(item), env))
                  for item in fields(cls)}  # fmt: skip
        return cls(**groups)

    @classmethod
    def from_values(cls, **values: object) -> Settings:
        """Settings from values named as their fields are (``redis_url=...``), the rest the
        defaults: each goes to its group."""
        return cls().with_overrides(**values)

    def with_overrides(self, **changes: object) -> Settings:
        """A copy with these fields changed, named as in ``from_values``."""
        by_group: dict[str, dict[str, object]] = {}
        for name, value in changes.items():
            if name not in GROUP_OF:
                raise TypeError(f"Settings has no setting {name!r}")
            by_group.setdefault(GROUP_OF[name], {})[name] = value
        groups = {group: replace(getattr(self, group), **values)
                  for group, values in by_group.items()}  # fmt: skip
        return replace(self, **groups)

    def key_path(self) -> Path:
        """The key directory, always absolute (``SigningSettings.key_path``)."""
        return self.signing.key_path(self.redis.key_prefix)

    def wall_clock(self) -> Callable[[], float]:
        """``time.time``, shifted by ``clock_skew_s`` when a chaos test asks for it."""
        return self.deployment.wall_clock()


def _group_type(item: Field[Any]) -> type[Any]:
    """The group class of a field of ``Settings`` (its default factory)."""
    return cast("type[Any]", item.default_factory)


def _by_name() -> dict[str, tuple[str, Field[Any]]]:
    return {item.name: (group.name, item) for group in fields(Settings)
            for item in declared(_group_type(group))}  # fmt: skip


_FIELDS = _by_name()
# The group each setting belongs to, by field name: ``with_overrides(issuer=...)`` -> tokens.
GROUP_OF: dict[str, str] = {name: group for name, (group, _) in _FIELDS.items()}


def field_of(name: str) -> Field[Any]:
    """The declaration of a setting, by field name, whichever group holds it."""
    return _FIELDS[name][1]


def specs() -> dict[str, Spec]:
    """Each field's declaration, by field name."""
    return {name: item.metadata["spec"] for name, (_, item) in _FIELDS.items()}


# Environment variable for each field (REDIS_URL keeps its conventional name).
ENV_NAMES: dict[str, str] = {name: spec.env for name, spec in specs().items()}
