"""docs/configuration.md and the code name the same variables with the same defaults, and
every setting refuses a bad value with its name, its range and what to do."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import pytest

from revocast.errors import SettingsError
from revocast.settings import GROUP_OF, Settings, Spec, check_value, field_of, specs

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "configuration.md").read_text()
ROW = re.compile(r"^\| `((?:REVOCAST_|REDIS_URL)[A-Z0-9_]*)` \| ([^|]*) \|", re.MULTILINE)
LITERAL = re.compile(r"\"((?:REVOCAST_)[A-Z0-9_]+)\"")


def documented() -> dict[str, str]:
    """Variable -> its default cell, from the tables of docs/configuration.md."""
    rows = ROW.findall(DOC)
    names = [name for name, _ in rows]
    assert len(names) == len(set(names)), "a variable is documented twice"
    return {name: default.strip() for name, default in rows}


def read_by_the_code() -> set[str]:
    """Every variable the runtime or its tooling reads: the settings' and any other
    REVOCAST_* literal in the package (REVOCAST_DEBUG, say)."""
    names = {spec.env for spec in specs().values()}
    for folder in ("shared", "services", "tools"):
        for path in (ROOT / folder).rglob("*.py"):
            names |= set(LITERAL.findall(path.read_text()))
    return names


def shown(spec: Spec, default: Any) -> str:
    """How the table shows a default."""
    if spec.shown_default is not None:
        return spec.shown_default
    if default is None:
        return "unset"
    if default in ("", ()):
        return "empty"
    if isinstance(default, bool):
        return f"`{int(default)}`"
    if isinstance(default, tuple):
        return f"`{','.join(default)}`"
    if isinstance(default, float):
        return f"`{default:g}`"
    return f"`{default}`"


def test_every_variable_the_code_reads_is_documented_and_no_other() -> None:
    in_doc, in_code = set(documented()), read_by_the_code()
    assert sorted(in_code - in_doc) == [], "read by the code, missing from the document"
    assert sorted(in_doc - in_code) == [], "documented, read by nothing"


@pytest.mark.parametrize("name", sorted(specs()))
def test_the_documented_default_is_the_code_s(name: str) -> None:
    spec = specs()[name]
    default = getattr(getattr(Settings(), GROUP_OF[name]), name)
    cell = documented()[spec.env]
    assert cell.startswith(shown(spec, default)), f"{spec.env}: {cell!r}, code: {default!r}"


NUMBERS = [name for name, spec in specs().items() if spec.low is not None]


@pytest.mark.parametrize("name", NUMBERS)
@pytest.mark.parametrize("raw", ["nan", "inf", "-inf", "1e9", "-1e9", "12abc"])
def test_a_bad_number_names_its_variable_and_range(name: str, raw: str) -> None:
    spec = specs()[name]
    try:
        Settings.from_env({spec.env: raw})
    except SettingsError as refused:
        message = refused.detail
    else:  # only a number in range may pass: 1e9 where the bound reaches it, for a float
        assert raw == "1e9", f"{spec.env}={raw} was taken"
        assert spec.high is not None, f"{spec.env}={raw} was taken"
        assert spec.high >= 1e9, f"{spec.env}={raw} was taken"
        return
    assert message.startswith(f"{spec.env} must be"), message
    assert spec.range_text() in message, message
    assert "set it so, or unset it" in message, message


@pytest.mark.parametrize("name", NUMBERS)
def test_each_end_of_a_range_is_taken_and_one_step_past_it_is_not(name: str) -> None:
    spec = specs()[name]
    kind = field_of(name).type
    step = 1 if "int" in str(kind) else 0.001
    default = field_of(name).default
    resolved: Any = int if step == 1 else float
    for edge in (spec.low, spec.high):
        assert edge is not None
        check_value(spec, resolved, resolved(edge), default)  # taken
    for outside in (spec.low - step, spec.high + step):  # type: ignore[operator]
        if outside == spec.off:
            continue
        with pytest.raises(SettingsError, match=re.escape(spec.env)):
            check_value(spec, resolved, resolved(outside), default)


def test_a_choice_names_its_variable_and_its_choices() -> None:
    for name, spec in specs().items():
        kind = field_of(name).type
        hints = {"Environment", "FailMode", "SameSite", "JwsAlg"}
        if kind not in hints:
            continue
        with pytest.raises(SettingsError) as refused:
            Settings.from_env({spec.env: "no-such-choice"})
        message = refused.value.detail
        assert message.startswith(f"{spec.env} must be one of"), message


@pytest.mark.parametrize(
    ("url", "said"),
    [
        pytest.param("redis://host/abc", "'abc' that is not a db number", id="db-not-a-number"),
        pytest.param("redis://host:6379/1/2", "'1/2' that is not a db number", id="two-dbs"),
        pytest.param("redis://host:6379/99999", "not a db number", id="db-too-large"),
    ],
)
def test_a_redis_url_whose_path_names_no_database_is_refused(url: str, said: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(said)):
        Settings.from_env({"REDIS_URL": url})
    assert Settings.from_env({"REDIS_URL": "redis://host:6379/3"}).redis.redis_url


def test_settings_between_settings_name_both() -> None:
    with pytest.raises(SettingsError, match=r"REVOCAST_MAX_STALENESS_S .* REVOCAST_ACCESS_TTL_S"):
        Settings.from_env({"REVOCAST_MAX_STALENESS_S": "301"})
    with pytest.raises(SettingsError, match=r"REVOCAST_REFRESH_TTL_S .* REVOCAST_ACCESS_TTL_S"):
        Settings.from_env({"REVOCAST_REFRESH_TTL_S": "10"})
    with pytest.raises(SettingsError, match=r"REVOCAST_STATUS_LIST=fallback .* REVOCAST_ISSUER"):
        Settings.from_env({"REVOCAST_STATUS_LIST": "fallback"})
    fallback = {"REVOCAST_STATUS_LIST": "fallback", "REVOCAST_ISSUER": "https://a.example"}
    assert Settings.from_env(fallback).status_lists.status_list == "fallback"


def test_no_float_setting_takes_a_value_that_is_not_finite() -> None:
    for name, spec in specs().items():
        if field_of(name).type != "float":
            continue
        for value in (math.nan, math.inf):
            with pytest.raises(SettingsError, match=re.escape(spec.env)):
                Settings().with_overrides(**{name: value})


def test_literal_choices_are_declared_as_literals() -> None:
    """The choice check above relies on the Literal aliases; a new one joins them."""
    import revocast.settings as module

    aliases = {
        name
        for name, value in vars(module).items()
        if get_origin(value) is Literal and all(isinstance(a, str) for a in get_args(value))
    }
    assert aliases == {
        "Environment",
        "FailMode",
        "SameSite",
        "JwsAlg",
        "StatusListMode",
        "SharedCache",
    }
