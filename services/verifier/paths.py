"""Path rules for the middleware: exact paths, prefixes and patterns.

``"/health"`` is one path; ``"/public/*"`` or ``"/docs*"`` is every path that starts with
what comes before the ``*``; a compiled ``re.Pattern`` must match the whole path. An exact
path wins over a prefix, a longer prefix over a shorter one, and patterns come last.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Generic, TypeVar

T = TypeVar("T")

Rule = str | re.Pattern[str]


class PathRules(Generic[T]):
    """What the first matching rule maps to, for any path."""

    def __init__(self, rules: Iterable[tuple[Rule, T]]) -> None:
        self._exact: dict[str, T] = {}
        prefixes: list[tuple[str, T]] = []
        self._patterns: list[tuple[re.Pattern[str], T]] = []
        for rule, value in rules:
            if isinstance(rule, re.Pattern):
                self._patterns.append((rule, value))
            elif not rule.startswith("/"):
                raise ValueError(f"a path rule starts with /: {rule!r}")
            elif rule.endswith("*"):
                prefixes.append((rule[:-1], value))
            else:
                self._exact[rule] = value
        self._prefixes = sorted(prefixes, key=lambda item: len(item[0]), reverse=True)

    def __bool__(self) -> bool:
        return bool(self._exact or self._prefixes or self._patterns)

    def get(self, path: str) -> T | None:
        found = self._exact.get(path)
        if found is not None:
            return found
        for prefix, value in self._prefixes:
            if path.startswith(prefix):
                return value
        for pattern, value in self._patterns:
            if pattern.fullmatch(path):
                return value
        return None
