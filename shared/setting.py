"""One setting: its declaration (``setting(...)``), how its variable is parsed and how its
value is checked.

Every group of ``revocast.settings`` declares its fields with ``setting`` and checks them
with ``check_fields`` when it is built, so every error names the variable, its range and
what to do (``REVOCAST_MAX_STALENESS_S must be from 0.01 to 86400 seconds, got nan: ...``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import Field, dataclass, field, fields
from typing import Any, Literal, get_args, get_origin, get_type_hints

from revocast.errors import SettingsError

_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")

# A value -> what it must be, when it is not ("at most 128 characters"); None when it is.
Check = Callable[[Any], str | None]


@dataclass(frozen=True, slots=True)
class Spec:
    """How one setting is read and checked: its variable, the range of a number (``off`` is
    one more value outside it that turns the feature off), the unit the range is in, a check
    of its own, and how the documentation shows a default computed at run time."""

    env: str
    low: float | None = None
    high: float | None = None
    off: float | None = None
    off_means: str = "off"
    unit: str = ""
    check: Check | None = None
    shown_default: str | None = None

    def range_text(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        if self.low is not None and self.high is not None:
            text = f"from {_number(self.low)} to {_number(self.high)}{unit}"
        elif self.low is not None:
            text = f"at least {_number(self.low)}{unit}"
        else:
            text = f"at most {_number(self.high or 0)}{unit}"
        return text if self.off is None else f"{_number(self.off)} ({self.off_means}) or {text}"


def setting(
    default: Any,
    env: str,
    *,
    low: float | None = None,
    high: float | None = None,
    off: float | None = None,
    off_means: str = "off",
    unit: str = "",
    check: Check | None = None,
    shown_default: str | None = None,
    secret: bool = False,
) -> Any:
    """A settings field read from ``env`` and checked against its declaration."""
    spec = Spec(env, low, high, off, off_means, unit, check, shown_default)
    return field(default=default, repr=not secret, metadata={"spec": spec})


def _number(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def declared(group: type) -> tuple[Field[Any], ...]:
    """The fields of a group that read a variable."""
    return tuple(item for item in fields(group) if "spec" in item.metadata)


def check_fields(group: Any) -> None:
    """SettingsError for the first field of ``group`` whose value its setting does not take."""
    kinds = get_type_hints(type(group))
    for item in declared(type(group)):
        check_value(item.metadata["spec"], kinds[item.name], getattr(group, item.name),
                    item.default)  # fmt: skip


def read_env(group: type, env: Mapping[str, str]) -> dict[str, object]:
    """The values of the variables of ``group`` that ``env`` sets, parsed by field type."""
    kinds = get_type_hints(group)
    values: dict[str, object] = {}
    for item in declared(group):
        spec: Spec = item.metadata["spec"]
        raw = env.get(spec.env)
        if raw is None or raw == "":
            continue
        values[item.name] = parse(spec, kinds[item.name], raw, item.default)
    return values


def _problem(spec: Spec, value: Any, default: Any, what: str) -> SettingsError:
    """``{env} must be {what}, got {value}: set it so, or unset it (for its default)``."""
    if default in (None, "", ()):
        unset = "unset it"
    elif isinstance(default, bool | tuple):
        unset = f"unset it for {int(default) if isinstance(default, bool) else ','.join(default)}"
    else:
        unset = f"unset it for {default!r}"
    shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
    return SettingsError(f"{spec.env} must be {what}, got {shown}: set it so, or {unset}")


def check_value(spec: Spec, kind: Any, value: Any, default: Any) -> None:
    """SettingsError naming the variable, its range and what to do, if ``value`` is not one
    the setting takes."""
    if get_origin(kind) is Literal and value not in get_args(kind):
        choices = ", ".join(str(choice) for choice in get_args(kind))
        raise _problem(spec, value, default, f"one of {choices}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        _check_number(spec, value, default)
    if spec.check is not None and (wanted := spec.check(value)) is not None:
        raise _problem(spec, value, default, wanted)


def _check_number(spec: Spec, value: float, default: Any) -> None:
    if not math.isfinite(value):
        raise _problem(spec, value, default, f"a finite number, {spec.range_text()}")
    low_ok = spec.low is None or value >= spec.low
    high_ok = spec.high is None or value <= spec.high
    if not (low_ok and high_ok) and value != spec.off:
        raise _problem(spec, value, default, spec.range_text())


def parse(spec: Spec, kind: Any, raw: str, default: Any) -> object:
    """The value of a variable, by its field's type; SettingsError naming it otherwise."""
    if kind is bool:
        if raw.lower() in _TRUE + _FALSE:
            return raw.lower() in _TRUE
        raise _problem(spec, raw, default, "1 or 0")
    if kind in (int, int | None):
        try:
            return int(raw)
        except ValueError:
            raise _problem(spec, raw, default, f"a whole number, {spec.range_text()}") from None
    if kind is float:
        return _parse_float(spec, raw, default)
    if kind == tuple[str, ...]:
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    return raw


def _parse_float(spec: Spec, raw: str, default: Any) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise _problem(spec, raw, default, f"a finite number, {spec.range_text()}")
    return value
