"""Verifier.verify in isolation: claims, algorithm pinning, revocation lookups, staleness.

No Redis here: the cache is filled directly and both clocks are fakes the
tests move, so time-dependent rules are checked without sleeping.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import jwt
import pytest

from revocast.errors import TokenRejected, VerifierStale
from revocast.events import KeyRevoked, SessionRevoked, UserRevoked
from revocast.keys import SigningKey
from revocast.keyspace import Keyspace
from revocast.settings import FailMode, Settings
from revocast.verifier import Verifier
from revocast.verifier.follower import StreamFollower
from revocast.verifier.followers import Followers
from revocast.verifier.lifecycle import Lifecycle

NOW = 1_800_000_000  # whole seconds, as every token time is


class Clock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


class Rig:
    def __init__(self, fail_mode: FailMode = "closed") -> None:
        self.settings = Settings.from_values(
            redis_url="redis://127.0.0.1:1/0", issuer="iss", audience="aud", fail_mode=fail_mode
        )
        self.wall = Clock(NOW)
        self.mono = Clock(1000.0)
        self.verifier = Verifier(self.settings, clock=self.wall, monotonic=self.mono)
        self.key = SigningKey.generate()
        self.verifier.cache.keys[self.key.kid] = self.key.public
        # One stream that read Redis just now (the clock below decides how long ago).
        followers = self.verifier.follower
        assert isinstance(followers, Followers)
        stream = StreamFollower(
            followers.follow, Keyspace().global_.stream, followers.cache, followers.clocks,
            block_ms=100,
        )  # fmt: skip
        stream.fresh_at = self.mono.now
        followers.streams = [stream]
        followers.state = Lifecycle.RUNNING
        followers.recompute_freshness()

    def claims(self, **changes: Any) -> dict[str, Any]:
        base = {"iss": "iss", "aud": "aud", "sub": "u1", "sid": "s1", "jti": "j1",
                "iat": NOW, "nbf": NOW, "exp": NOW + 300, "roles": ["user"]}  # fmt: skip
        base.update(changes)
        return {k: v for k, v in base.items() if v is not None}

    def token(self, headers: dict[str, Any] | None = None, **changes: Any) -> str:
        head = {"kid": self.key.kid, "typ": "at+jwt"} | (headers or {})
        return jwt.encode(self.claims(**changes), self.key.private, "EdDSA", headers=head)


@pytest.fixture
def rig() -> Rig:
    return Rig()


def code_of(rig: Rig, token: str) -> str:
    with pytest.raises(TokenRejected) as caught:
        rig.verifier.verify(token)
    return caught.value.code


def b64(data: dict[str, Any] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_valid_token_is_accepted(rig: Rig) -> None:
    claims = rig.verifier.verify(rig.token())
    assert (claims.sub, claims.sid, claims.roles) == ("u1", "s1", ("user",))


def test_expiry_honours_leeway(rig: Rig) -> None:
    token = rig.token()
    rig.wall.now = NOW + 300 + rig.settings.tokens.leeway_s - 0.01
    rig.verifier.verify(token)
    rig.wall.now = NOW + 300 + rig.settings.tokens.leeway_s + 0.01
    assert code_of(rig, token) == "token_expired"


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        pytest.param({"nbf": NOW + 60}, "token_not_yet_valid", id="nbf-future"),
        pytest.param({"iat": NOW + 60}, "issued_in_future", id="iat-future"),
        pytest.param({"iss": "evil"}, "wrong_issuer", id="wrong-iss"),
        pytest.param({"aud": "other-api"}, "wrong_audience", id="wrong-aud"),
        pytest.param({"roles": "admin"}, "invalid_claims", id="roles-not-a-list"),
        pytest.param({"exp": "never"}, "invalid_claims", id="exp-not-a-number"),
        *[
            pytest.param({claim: None}, "invalid_claims", id=f"missing-{claim}")
            for claim in ("iss", "aud", "sub", "sid", "jti", "iat", "nbf", "exp", "roles")
        ],
    ],
)
def test_claims_are_checked(rig: Rig, changes: dict[str, Any], code: str) -> None:
    assert code_of(rig, rig.token(**changes)) == code


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        pytest.param({"typ": "JWT"}, "wrong_token_type", id="typ-jwt"),
        pytest.param({"kid": "unknown"}, "unknown_key", id="unknown-kid"),
        pytest.param({"jku": "https://evil/jwks"}, "forbidden_header", id="jku"),
        pytest.param({"x5u": "https://evil/cert"}, "forbidden_header", id="x5u"),
        pytest.param({"jwk": {"kty": "OKP"}}, "forbidden_header", id="embedded-jwk"),
        pytest.param({"crit": ["exp"]}, "forbidden_header", id="crit"),
    ],
)
def test_headers_are_checked(rig: Rig, headers: dict[str, Any], code: str) -> None:
    assert code_of(rig, rig.token(headers)) == code


def test_missing_kid_is_refused(rig: Rig) -> None:
    token = jwt.encode(rig.claims(), rig.key.private, "EdDSA", headers={"typ": "at+jwt"})
    assert code_of(rig, token) == "missing_kid"


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_alg_none_is_refused(rig: Rig, alg: str) -> None:
    header = {"alg": alg, "kid": rig.key.kid, "typ": "at+jwt"}
    for signature in ("", "AAAA"):
        token = f"{b64(header)}.{b64(rig.claims())}.{signature}"
        assert code_of(rig, token) in {"algorithm_not_allowed", "malformed_token"}


def test_hs256_with_the_public_key_as_secret_is_refused(rig: Rig) -> None:
    """Key confusion: the public key bytes (or the JWKS text) used as an HMAC secret."""
    public_jwk = json.dumps(rig.key.public.jwk).encode()
    header = {"alg": "HS256", "kid": rig.key.kid, "typ": "at+jwt"}
    signing_input = f"{b64(header)}.{b64(rig.claims())}"
    import hashlib
    import hmac

    mac = hmac.new(public_jwk, signing_input.encode(), hashlib.sha256).digest()
    assert code_of(rig, f"{signing_input}.{b64(mac)}") == "algorithm_not_allowed"


def test_tampered_payload_is_refused(rig: Rig) -> None:
    head, _, sig = rig.token().split(".")
    forged = rig.claims(roles=["admin"])
    assert code_of(rig, f"{head}.{b64(forged)}.{sig}") == "bad_signature"


def test_token_of_another_key_is_refused(rig: Rig) -> None:
    other = SigningKey.generate()
    token = jwt.encode(
        rig.claims(), other.private, "EdDSA", headers={"kid": rig.key.kid, "typ": "at+jwt"}
    )
    assert code_of(rig, token) == "bad_signature"


@pytest.mark.parametrize(
    "token",
    ["", "abc", "a.b", "a.b.c.d", "....", "eyJ.eyJ.x", "\x00\x01.\x02.\x03"],
)
def test_garbage_is_malformed(rig: Rig, token: str) -> None:
    assert code_of(rig, token) == "malformed_token"


def test_oversized_token_is_refused_before_parsing(rig: Rig) -> None:
    assert code_of(rig, "x" * 5000) == "token_too_large"


def test_revoked_session_user_and_key(rig: Rig) -> None:
    token = rig.token()
    cache = rig.verifier.cache
    cache.apply(SessionRevoked(ts_ms=0, sid="s1", uid="u1", at_ms=0, until_ms=10**13))
    assert code_of(rig, token) == "session_revoked"
    cache.sessions.clear()
    cache.apply(UserRevoked(ts_ms=0, uid="u1", not_before_ms=int(NOW * 1000), until_ms=10**13))
    assert code_of(rig, token) == "user_revoked"
    after = rig.token(iat_ms=NOW * 1000 + 1)
    assert rig.verifier.verify(after).sub == "u1"  # issued after: fine
    cache.users.clear()
    cache.apply(KeyRevoked(ts_ms=0, kid=rig.key.kid, at_ms=0))
    assert code_of(rig, token) == "key_revoked"


def test_stale_verifier_refuses_to_guess(rig: Rig) -> None:
    token = rig.token()
    rig.mono.now += rig.settings.freshness.max_staleness_s - 0.01
    rig.verifier.verify(token)
    rig.mono.now += 0.02
    with pytest.raises(VerifierStale):
        rig.verifier.verify(token)


def test_fail_open_is_bounded_by_the_access_token_lifetime() -> None:
    rig = Rig(fail_mode="open")
    token = rig.token()
    rig.mono.now += rig.settings.freshness.max_staleness_s + 10
    rig.verifier.verify(token)  # open: accepted while stale, within one token lifetime
    rig.mono.now += rig.settings.tokens.access_ttl_s
    with pytest.raises(VerifierStale):
        rig.verifier.verify(token)


def test_never_started_verifier_is_stale() -> None:
    verifier = Verifier(Settings.from_values(redis_url="redis://127.0.0.1:1/0"))
    with pytest.raises(VerifierStale):
        verifier.verify("a.b.c")
    assert not verifier.ready


def test_pruning_forgets_only_what_no_token_can_need(rig: Rig) -> None:
    cache = rig.verifier.cache
    cache.apply(SessionRevoked(ts_ms=0, sid="old", uid="u", at_ms=0, until_ms=1_000))
    cache.apply(SessionRevoked(ts_ms=0, sid="new", uid="u", at_ms=0, until_ms=5_000))
    cache.apply(UserRevoked(ts_ms=0, uid="u", not_before_ms=0, until_ms=1_000))
    assert cache.prune(now_ms=2_000) == 2
    assert set(cache.sessions) == {"new"}
    assert cache.users == {}


def test_memo_never_bypasses_revocation(rig: Rig) -> None:
    token = rig.token()
    rig.verifier.verify(token)  # first sight: remembered
    rig.verifier.cache.apply(SessionRevoked(ts_ms=0, sid="s1", uid="u1", at_ms=0, until_ms=10**13))
    assert code_of(rig, token) == "session_revoked"


def test_memo_never_outlives_the_token(rig: Rig) -> None:
    token = rig.token()
    rig.verifier.verify(token)
    rig.wall.now = NOW + 300 + rig.settings.tokens.leeway_s + 0.01
    assert code_of(rig, token) == "token_expired"
    assert token not in rig.verifier._memo


def test_memo_is_bounded_and_skips_the_signature_on_second_sight(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    from revocast.verifier.decode import check_signature

    calls = []

    def counting(token: str, keys: Any) -> Any:
        calls.append(token)
        return check_signature(token, keys)

    monkeypatch.setattr("revocast.verifier.decode.check_signature", counting)
    rig.verifier._memo_size = 3
    tokens = [rig.token(jti=f"j{i}") for i in range(5)]
    for token in tokens:
        rig.verifier.verify(token)
    rig.verifier.verify(tokens[-1])
    assert len(calls) == 5  # the repeat was a memo hit
    assert list(rig.verifier._memo) == tokens[2:]  # oldest evicted first


def test_memo_off_checks_every_time(monkeypatch: pytest.MonkeyPatch) -> None:
    rig = Rig()
    rig.verifier._memo_size = 0
    token = rig.token()
    rig.verifier.verify(token)
    rig.verifier.verify(token)
    assert rig.verifier._memo == {}


@pytest.mark.parametrize("typ", ["at+jwt", "application/at+jwt", "AT+JWT", "Application/AT+JWT"])
def test_both_rfc_9068_types_are_accepted_in_any_case(rig: Rig, typ: str) -> None:
    assert rig.verifier.verify(rig.token({"typ": typ})).sub == "u1"


@pytest.mark.parametrize("typ", ["jwt", "application/jwt", "at+jwt2", "", 7])
def test_other_types_are_refused(rig: Rig, typ: object) -> None:
    assert code_of(rig, rig.token({"typ": typ})) == "wrong_token_type"


def test_both_names_of_ed25519_are_accepted(rig: Rig) -> None:
    """RFC 9864 names the signature Ed25519; EdDSA is the older, polymorphic name."""
    token = rig.token()
    header, payload, _ = token.split(".")
    for alg in ("EdDSA", "Ed25519"):
        head = json.loads(base64.urlsafe_b64decode(header + "=="))
        head["alg"] = alg
        text = base64.urlsafe_b64encode(json.dumps(head).encode()).rstrip(b"=").decode()
        signature = rig.key.private.sign(f"{text}.{payload}".encode())
        signed = f"{text}.{payload}." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()
        assert rig.verifier.verify(signed).sub == "u1"


def test_revocations_in_the_same_second_stay_ordered(rig: Rig) -> None:
    """iat is whole seconds now; iat_ms keeps the millisecond the cut-offs compare with: a
    token issued 1 ms before a block in the same second is dead, 1 ms after it lives."""
    second = int(NOW)
    cut = second * 1000 + 500
    before = rig.token(iat=second, nbf=second, exp=second + 300, iat_ms=cut - 1)
    after = rig.token(iat=second, nbf=second, exp=second + 300, iat_ms=cut + 1)
    rig.verifier.cache.apply(UserRevoked(ts_ms=0, uid="u1", not_before_ms=cut, until_ms=10**13))
    assert code_of(rig, before) == "user_revoked"
    assert rig.verifier.verify(after).sub == "u1"


def test_iat_ms_must_agree_with_iat(rig: Rig) -> None:
    second = int(NOW)
    token = rig.token(iat=second, nbf=second, exp=second + 300, iat_ms=(second + 1) * 1000)
    assert code_of(rig, token) == "invalid_claims"
