"""The username rule: NFKC letters of one script, digits and ``. _ @ + -``; one name however
it is typed, at sign-up and at login; ASCII names keep the keys they always had."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from revocast import usernames
from revocast.errors import Conflict, InvalidRequest
from tests.conftest import PASSWORD, Issuer

ZOE_NFC = "Zo\u00eb"
ZOE_NFD = "Zoe\u0308"
ZOE_FULLWIDTH = "\uff3a\uff4f\u00eb"  # fullwidth Z and o


@pytest.mark.parametrize(
    ("typed", "normal"),
    [
        pytest.param("alice", "alice", id="ascii"),
        pytest.param("Alice", "Alice", id="case-kept"),
        pytest.param("a.b_c-d@e+f9", "a.b_c-d@e+f9", id="ascii-punctuation"),
        pytest.param(ZOE_NFC, ZOE_NFC, id="latin-accent"),
        pytest.param(ZOE_NFD, ZOE_NFC, id="decomposed"),
        pytest.param(ZOE_FULLWIDTH, ZOE_NFC, id="fullwidth"),
        pytest.param("\ufb01sh", "fish", id="ligature"),
        pytest.param("\u0418\u0432\u0430\u043d3", "\u0418\u0432\u0430\u043d3", id="cyrillic"),
        pytest.param("\u0395\u03bb\u03ad\u03bd\u03b7", "\u0395\u03bb\u03ad\u03bd\u03b7",
                     id="greek"),
        pytest.param("\u5c71\u7530\u305f\u308d\u3046", "\u5c71\u7530\u305f\u308d\u3046",
                     id="han-hiragana"),
        pytest.param("\uae40\ubbfc\uc900", "\uae40\ubbfc\uc900", id="hangul"),
        pytest.param("\u0928\u092e\u0938\u094d\u0924\u0947", "\u0928\u092e\u0938\u094d\u0924\u0947",
                     id="devanagari-marks"),
        pytest.param("x" * 64, "x" * 64, id="64-chars"),
    ],
)  # fmt: skip
def test_names_one_may_take(typed: str, normal: str) -> None:
    assert usernames.check(typed) == normal


@pytest.mark.parametrize(
    ("typed", "says"),
    [
        pytest.param("p\u0430ypal", "mixes scripts (Cyrillic, Latin)", id="latin-cyrillic"),
        pytest.param("M\u00fcller\u03a9", "mixes scripts (Greek, Latin)", id="latin-greek"),
        pytest.param("ivan\u0663", "mixes scripts (Arabic, Latin)", id="latin-arabic-digit"),
        pytest.param("ab cd", "U+0020 (SPACE)", id="space"),
        pytest.param("a\u200db", "U+200D (ZERO WIDTH JOINER)", id="zero-width-joiner"),
        pytest.param("\u3164", "FILLER", id="hangul-filler"),
        pytest.param("\u0301a", "COMBINING ACUTE ACCENT", id="mark-without-letter"),
        pytest.param("", "has 0 characters", id="empty"),
        pytest.param("x" * 65, "has 65 characters", id="65-chars"),
        pytest.param("0123456789abcdef" * 2, "looks like a user id", id="like-an-id"),
    ],
)
def test_names_refused_say_why_and_what_to_do(typed: str, says: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        usernames.check(typed)
    assert (refused.value.code, refused.value.status) == ("invalid_request", 400)
    assert says in refused.value.detail
    assert "\n" not in refused.value.detail
    assert ": " in refused.value.detail  # what is wrong: what to do


async def login(issuer: Issuer, name: str) -> str:
    reply = await issuer.http.post("/v1/login", json={"username": name, "password": PASSWORD})
    assert reply.status_code == 200, reply.text
    return str(reply.json()["user_id"])


async def test_zoe_logs_in_however_the_name_is_typed(issuer: Issuer) -> None:
    uid = await issuer.add_user(ZOE_NFD)
    assert await issuer.ctx.store.users.username_of(uid) == ZOE_NFC  # stored in its normal form
    for typed in (ZOE_NFC, ZOE_NFD, ZOE_FULLWIDTH):
        assert await login(issuer, typed) == uid
    form = {"grant_type": "password", "username": ZOE_NFD, "password": PASSWORD}
    assert (await issuer.http.post("/oauth/token", data=form)).status_code == 200
    with pytest.raises(Conflict):
        await issuer.add_user(ZOE_FULLWIDTH)  # the same name


async def test_mixed_script_name_is_refused_with_a_clear_detail(issuer: Issuer) -> None:
    await issuer.add_user("paypal")
    with pytest.raises(InvalidRequest) as refused:
        await issuer.add_user("p\u0430ypal")
    assert (refused.value.code, refused.value.status) == ("invalid_request", 400)
    assert refused.value.detail == (
        "the username mixes scripts (Cyrillic, Latin), as look-alike names do: "
        "write it in one script"
    )


async def test_ascii_names_keep_their_keys_and_their_case(issuer: Issuer, redis: Redis) -> None:
    """The key of an ASCII name is the name itself, as before the rule; case still counts."""
    lower = await issuer.add_user("alice")
    upper = await issuer.add_user("Alice")
    assert lower != upper
    keys = issuer.ctx.store.keys
    prefix = f"{issuer.settings.redis.key_prefix}:{{"
    for name, uid in (("alice", lower), ("Alice", upper)):
        key = keys.of(name).username(name)
        assert key.startswith(prefix)
        assert key.endswith(f"}}:username:{name}")
        assert await redis.get(key) == uid
        assert await login(issuer, name) == uid
    refused = await issuer.http.post("/v1/login", json={"username": "ALICE", "password": PASSWORD})
    assert refused.status_code == 401


async def test_fullwidth_name_is_stored_under_its_ascii_form(issuer: Issuer, redis: Redis) -> None:
    uid = await issuer.add_user("\uff42\uff4f\uff42")  # fullwidth "bob"
    keys = issuer.ctx.store.keys
    assert await redis.get(keys.of("bob").username("bob")) == uid
    assert await login(issuer, "bob") == uid
