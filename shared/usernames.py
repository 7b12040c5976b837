"""The username rule: which names may be taken, and the one form a name is stored and found by.

A name is normalised with NFKC first, so ``Zoë`` typed precomposed, decomposed (``Zoe`` and a
combining diaeresis) or in fullwidth letters is one and the same name, at sign-up and at login.
The normal form is then 1 to 64 characters: letters (Unicode L*, with the combining marks
that follow them), digits (Nd) and ``. _ @ + -``. Its letters come from one script, so a name
cannot pass for another with a look-alike letter from a second script (``paypal`` spelt with
a Cyrillic ``a``, U+0430); Han may go with Hiragana and Katakana, or with Hangul, as
Japanese and Korean names do. ASCII digits and ``. _ @ + -`` belong to every script.

Case is kept and counts, as it always did: ``Alice`` and ``alice`` are two names. An ASCII
name is its own normal form, so names taken before this rule keep their keys.
"""

from __future__ import annotations

import unicodedata

from revocast.errors import InvalidRequest
from revocast.ids import USER_ID

MAX_CHARS = 64  # of the normal form
# Longest name a login may send: a decomposed 64-character name is longer than 64.
MAX_INPUT_CHARS = 256
RULE = "1 to 64 letters of one script, digits and . _ @ + -"
_NEUTRAL = frozenset("0123456789._@+-")
# Scripts whose names open with a word they share with others: two words tell them apart.
_TWO_WORDS = frozenset({"OLD", "NEW", "TAI"})
_ALIASES = {"IDEOGRAPHIC": "CJK", "EXTENDED": "ARABIC"}
_MIXABLE = (
    frozenset({"CJK", "HIRAGANA", "KATAKANA"}),
    frozenset({"CJK", "HANGUL"}),
    frozenset({"CJK", "BOPOMOFO"}),
)


def normalize(name: str) -> str:
    """The form a name is stored, keyed and looked up by (NFKC; case kept)."""
    return unicodedata.normalize("NFKC", name)


def check(name: str) -> str:
    """The normal form of a name one may take; InvalidRequest saying what to change otherwise."""
    normal = normalize(name)
    if not 1 <= len(normal) <= MAX_CHARS:
        raise InvalidRequest(f"the username has {len(normal)} characters: it must be {RULE}")
    if USER_ID.fullmatch(normal):  # `revocast block NAME` takes a name or an id: never both
        raise InvalidRequest("the username looks like a user id (32 hex digits): pick another")
    scripts: set[str] = set()
    previous = ""
    for char in normal:
        category = unicodedata.category(char)
        # A mark only on the letter before it (Devanagari and Thai vowels, a rare accent).
        mark = category in ("Mn", "Mc") and previous in ("L", "M")
        kind_ok = char in _NEUTRAL or category[0] == "L" or category == "Nd" or mark
        if not kind_ok or "FILLER" in unicodedata.name(char, ""):  # Hangul fillers: blank
            raise InvalidRequest(f"the username may not hold {_describe(char)}: it must be {RULE}")
        previous = category[0]
        script = _script(char)
        if script is not None:
            scripts.add(script)
    if len(scripts) > 1 and not any(scripts <= group for group in _MIXABLE):
        mixed = ", ".join(sorted(found.title() for found in scripts))
        raise InvalidRequest(
            f"the username mixes scripts ({mixed}), as look-alike names do: write it in one script"
        )
    return normal


def _script(char: str) -> str | None:
    """The script a character belongs to, from its Unicode name; None for one that goes
    with any (ASCII digits, ``. _ @ + -``, combining marks)."""
    if char in _NEUTRAL:
        return None
    words = unicodedata.name(char, "UNNAMED").replace("-", " ").split()
    if words[0] == "COMBINING":
        return None
    first = _ALIASES.get(words[0], words[0])
    return f"{first} {words[1]}" if first in _TWO_WORDS and len(words) > 1 else first


def _describe(char: str) -> str:
    """A character named so that an invisible one shows too: U+0020 (SPACE)."""
    return f"U+{ord(char):04X} ({unicodedata.name(char, 'unnamed')})"
