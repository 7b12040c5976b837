from __future__ import annotations

from pathlib import Path

import pytest

from revocast.errors import SettingsError
from revocast.settings import (
    ENV_NAMES,
    GROUP_OF,
    FreshnessSettings,
    LoginThrottle,
    RedisSettings,
    Settings,
    TokenSettings,
)


def test_defaults_match_the_documented_table() -> None:
    settings = Settings.from_env({})
    assert settings.redis.redis_url is None
    assert settings.tokens.access_ttl_s == 300
    assert settings.freshness.max_staleness_s == 5.0
    assert settings.tokens.refresh_grace_s == 10.0
    assert settings.freshness.fail_mode == "closed"


def test_reads_every_variable() -> None:
    settings = Settings.from_env(
        {
            "REDIS_URL": "redis://127.0.0.1:1/0",
            "REVOCAST_ISSUER": "https://auth.example",
            "REVOCAST_AUDIENCE": "api",
            "REVOCAST_ACCESS_TTL_S": "60",
            "REVOCAST_REFRESH_TTL_S": "3600",
            "REVOCAST_MAX_STALENESS_S": "1.5",
            "REVOCAST_FAIL_MODE": "open",
        }
    )
    assert (settings.tokens.issuer, settings.tokens.audience, settings.tokens.access_ttl_s) == (
        "https://auth.example",
        "api",
        60,
    )
    assert (settings.freshness.max_staleness_s, settings.freshness.fail_mode) == (1.5, "open")


@pytest.mark.parametrize(
    "env",
    [
        pytest.param({"REVOCAST_ACCESS_TTL_S": "soon"}, id="not-a-number"),
        pytest.param({"REVOCAST_ACCESS_TTL_S": "0"}, id="zero-ttl"),
        pytest.param({"REVOCAST_FAIL_MODE": "maybe"}, id="unknown-fail-mode"),
        pytest.param({"REVOCAST_REFRESH_TTL_S": "10"}, id="refresh-shorter-than-access"),
        pytest.param({"REVOCAST_KEY_PREFIX": "a b"}, id="prefix-with-space"),
        pytest.param({"REVOCAST_MAX_STALENESS_S": "-1"}, id="negative-staleness"),
        pytest.param({"REVOCAST_TRUSTED_PROXIES": "10.0.0.0/8,gateway"}, id="proxy-by-name"),
        pytest.param({"REVOCAST_REVOCATIONS_PER_MINUTE": "-1"}, id="negative-revocation-limit"),
        pytest.param({"REVOCAST_REVOCATIONS_PER_MINUTE": "1e9"}, id="revocation-limit-float"),
        pytest.param({"REVOCAST_SSF_MAX_QUEUE": "0"}, id="empty-ssf-queue"),
    ],
)
def test_bad_values_fail_clearly(env: dict[str, str]) -> None:
    with pytest.raises(SettingsError):
        Settings.from_env(env)


@pytest.mark.parametrize("value", ["8191", "1048577", "64k"])
def test_the_header_bound_names_its_variable_and_range(value: str) -> None:
    assert Settings.from_env({}).http.max_header_bytes == 65536
    assert Settings.from_env({"REVOCAST_MAX_HEADER_BYTES": "8192"}).http.max_header_bytes == 8192
    with pytest.raises(SettingsError, match="REVOCAST_MAX_HEADER_BYTES must be"):
        Settings.from_env({"REVOCAST_MAX_HEADER_BYTES": value})


def test_a_bad_revocation_limit_names_its_variable_and_range() -> None:
    with pytest.raises(SettingsError, match="REVOCAST_REVOCATIONS_PER_MINUTE must be 0"):
        Settings.from_env({"REVOCAST_REVOCATIONS_PER_MINUTE": "2000000"})
    assert Settings.from_env({}).limits.revocations_per_minute == 60


def test_revocations_outlive_tokens_and_retention_outlives_revocations() -> None:
    settings = Settings.from_values(access_ttl_s=300, leeway_s=2)
    assert settings.tokens.revocation_lifetime_ms > (300 + 2) * 1000
    assert settings.tokens.stream_retention_ms >= settings.tokens.revocation_lifetime_ms


def test_clock_skew_knob_shifts_only_this_process_clock() -> None:
    import time

    assert Settings().wall_clock() is time.time
    skewed = Settings.from_env({"REVOCAST_CLOCK_SKEW_S": "-7.5"}).wall_clock()
    assert abs(skewed() - (time.time() - 7.5)) < 0.1


def test_trusted_proxies_are_addresses_or_networks() -> None:
    settings = Settings.from_env({"REVOCAST_TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.1,::1"})
    assert settings.http.trusted_proxies == ("10.0.0.0/8", "127.0.0.1", "::1")


def test_the_key_directory_is_always_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert Settings().key_path() == tmp_path / "data" / "revocast" / "keys" / "revocast"
    assert (
        Settings.from_values(key_prefix="shop").key_path() == tmp_path / "data/revocast/keys/shop"
    )
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    home_default = tmp_path / "home" / ".local" / "share" / "revocast" / "keys" / "revocast"
    assert Settings().key_path() == home_default
    assert Settings.from_values(key_dir="~/k").key_path() == tmp_path / "home" / "k"
    monkeypatch.chdir(tmp_path)
    given = Settings.from_env({"REVOCAST_KEY_DIR": "my-keys"}).key_path()
    assert given == tmp_path / "my-keys"
    assert given.is_absolute()


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"REVOCAST_LOGIN_MAX_ATTEMPTS_PER_CLIENT": "-1"},
         "REVOCAST_LOGIN_MAX_ATTEMPTS_PER_CLIENT"),
        ({"REVOCAST_LOGIN_MAX_FAILURES_PER_USER_ADDRESS": "-1"},
         "REVOCAST_LOGIN_MAX_FAILURES_PER_USER_ADDRESS"),
        ({"REVOCAST_LOGIN_MAX_FAILURES_PER_USER": "-1"}, "REVOCAST_LOGIN_MAX_FAILURES_PER_USER"),
        ({"REVOCAST_LOGIN_WINDOW_S": "0"}, "REVOCAST_LOGIN_WINDOW_S"),
        ({"REVOCAST_LOGIN_USER_MAX_DELAY_S": "0"}, "REVOCAST_LOGIN_USER_MAX_DELAY_S"),
        ({"REVOCAST_LOGIN_USER_MAX_DELAY_S": "3601"}, "REVOCAST_LOGIN_USER_MAX_DELAY_S"),
        ({"REVOCAST_LOGIN_USER_MEMORY_S": "899"}, "REVOCAST_LOGIN_USER_MEMORY_S"),
        ({"REVOCAST_LOGIN_WINDOW_S": "3600", "REVOCAST_LOGIN_USER_MEMORY_S": "1800"},
         "REVOCAST_LOGIN_USER_MEMORY_S"),
        ({"REVOCAST_LOGIN_KNOWN_ADDRESS_DAYS": "366"}, "REVOCAST_LOGIN_KNOWN_ADDRESS_DAYS"),
    ],
)  # fmt: skip
def test_login_throttle_settings_name_the_variable_and_its_range(
    env: dict[str, str], named: str
) -> None:
    with pytest.raises(SettingsError, match=named):
        Settings.from_env(env)


def test_login_throttle_defaults_are_the_documented_ones() -> None:
    defaults = Settings.from_env({}).throttle
    assert (defaults.login_max_attempts_per_client, defaults.login_max_failures_per_user_address,
            defaults.login_window_s) == (100, 10, 900)  # fmt: skip
    assert (defaults.login_max_failures_per_user, defaults.login_user_max_delay_s,
            defaults.login_user_memory_s, defaults.login_known_address_days) == (
        10, 300, 86_400, 30)  # fmt: skip


def test_each_group_checks_itself_and_settings_checks_between_groups() -> None:
    with pytest.raises(SettingsError, match="REVOCAST_REFRESH_TTL_S"):
        TokenSettings(access_ttl_s=60, refresh_ttl_s=30)
    with pytest.raises(SettingsError, match="REVOCAST_LOGIN_USER_MEMORY_S"):
        LoginThrottle(login_window_s=3600, login_user_memory_s=1800)
    with pytest.raises(SettingsError, match=r"REVOCAST_MAX_STALENESS_S .* REVOCAST_ACCESS_TTL_S"):
        Settings(tokens=TokenSettings(access_ttl_s=60), freshness=FreshnessSettings(61.0))


def test_values_named_by_field_go_to_their_group() -> None:
    settings = Settings.from_values(redis_url="redis://h/1", issuer="https://a", access_ttl_s=60)
    assert settings.redis == RedisSettings(redis_url="redis://h/1")
    assert (settings.tokens.issuer, settings.tokens.access_ttl_s) == ("https://a", 60)
    assert settings.with_overrides(access_ttl_s=120).tokens.access_ttl_s == 120
    assert set(GROUP_OF) == set(ENV_NAMES)
    with pytest.raises(TypeError, match="no_such_setting"):
        settings.with_overrides(no_such_setting=1)
