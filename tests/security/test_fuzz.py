"""Property tests (hypothesis): the verifier and the issuer's HTTP surface under random input.

Every test has a fixed budget and draws the same examples on every run
(``derandomize=True``, no example database: no failure is replayed from an earlier
run). Hypothesis still keeps caches in ``.hypothesis/``, which ignores itself in git.
What each property proves is in its docstring.

How hypothesis meets the async fixtures
---------------------------------------
The fixtures are async and live on pytest-asyncio's session event loop: a
started Verifier whose follower task keeps polling Redis, and the issuer served
by uvicorn (tests/support/servers.serve). pytest-asyncio 1.x collects an
``async def`` test decorated with ``@given`` as an ``AsyncHypothesisTest`` item:
it swaps hypothesis' inner test for a sync wrapper that runs each example as
``runner.run(coroutine)`` on that same session loop. So an example can simply
``await`` the issuer's httpx client; the server and the follower run while an
example runs, and the loop only pauses between examples (for the milliseconds
hypothesis needs to draw the next one, far below the 2 s staleness bound of the
test settings). Checked with pytest-asyncio 1.5 and hypothesis 6.170: no second
loop, no thread, no ``.example()``.

Hypothesis cannot re-create function-scoped fixtures per example, so one fixture
instance serves every example of a test (``function_scoped_fixture`` health
check suppressed on purpose). The properties are written to hold whatever
earlier examples did.

Product bugs these properties found (both fixed, both kept as regression tests)
--------------------------------------------------------------------------------
1. A token whose header decodes to deeply nested JSON (``[[[[...``, about 1000
   levels, under the 4 KiB limit) made ``Verifier.verify`` raise
   ``RecursionError`` before any signature check: a 500 on every bearer route.
2. Invalid UTF-8 inside a JSON string made ``msgspec.json.decode`` raise
   ``UnicodeDecodeError``, which the body reader did not catch: a 500 on the
   JSON routes.

Found by issue 19's review, kept here the same way: 3. ~1000 levels of nesting inside an SSF
body's object of any values made msgspec raise ``RecursionError``: a 500 (now
``revocast.strict_json`` refuses nesting past 32 levels before any parser runs).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import inspect
import json
import re
import socket
import string
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args
from urllib.parse import quote, urlencode

import httpx
import hypothesis
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, event, given
from hypothesis import strategies as st
from redis.asyncio import Redis

from revocast.claims import AccessClaims
from revocast.errors import TokenRejected
from revocast.issuer import create_app
from revocast.keys import SigningKey
from revocast.settings import Settings
from revocast.store import Store
from revocast.verifier import Verifier
from tests.conftest import Issuer
from tests.security.attacks import Forge, b64
from tests.support.servers import serve
from tests.test_errors import dump

# Deeper than json.loads can recurse (bug 1 in the module docstring), under the size limit.
MAX_TOKEN_NESTING = 3000


def budget(examples: int) -> hypothesis.settings:
    """A fixed, reproducible budget: the same examples every run, no example database."""
    return hypothesis.settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


KEY = SigningKey.generate()  # the deployment's real key: the verifier trusts it
ATTACKER_KEY = SigningKey.generate()  # signs every re-signed mutation, never trusted
B64URL = string.ascii_letters + string.digits + "-_"
# Reasons a token can get before its signature is known to be good. Claims are looked at
# only after the signature verified, so a token the real key did not sign gets one of these.
BEFORE_SIGNATURE = frozenset(
    {
        "token_too_large",
        "malformed_token",
        "forbidden_header",
        "wrong_token_type",
        "missing_kid",
        "unknown_key",
        "algorithm_not_allowed",
        "bad_signature",
    }
)


# ---------------------------------------------------------------------------------------
# Strategies: random tokens
# ---------------------------------------------------------------------------------------

ALL_CHARACTERS = st.characters(exclude_categories=())  # every code point, lone surrogates too
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=16)
)


def json_values(max_leaves: int = 10) -> st.SearchStrategy[Any]:
    return st.recursive(
        JSON_SCALARS,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
        max_leaves=max_leaves,
    )


HEADER_MEMBERS = [
    "alg",
    "kid",
    "typ",
    "jku",
    "x5u",
    "jwk",
    "x5c",
    "x5t",
    "x5t#S256",
    "crit",
    "cty",
    "enc",
    "zip",
]
CLAIM_MEMBERS = ["iss", "aud", "sub", "sid", "jti", "iat", "nbf", "exp", "roles"]
HEADER_WORDS = [
    "EdDSA",
    "Ed25519",
    "none",
    "HS256",
    "RS256",
    "ES256",
    "at+jwt",
    "JWT",
    "",
    KEY.kid,
    ATTACKER_KEY.kid,
]

header_objects = st.dictionaries(
    st.sampled_from(HEADER_MEMBERS) | st.text(max_size=8),
    st.sampled_from(HEADER_WORDS) | json_values(),
    max_size=5,
) | st.fixed_dictionaries(
    # The real key's header: random payloads and signatures then reach the signature check.
    {"alg": st.just("EdDSA"), "kid": st.just(KEY.kid), "typ": st.just("at+jwt")},
    optional={"cty": json_values(), "x": json_values()},
)
claim_objects = st.dictionaries(
    st.sampled_from(CLAIM_MEMBERS) | st.text(max_size=8), json_values(), max_size=10
)


def depths(limit: int) -> st.SearchStrategy[int]:
    """Nesting depths up to ``limit``: integers() alone favours small values, so also
    depths spread over the whole range (Python's own recursion limit is 1000)."""
    marks = [d for d in (1, 10, 100, 500, 900, 999, 1000, 1001, 2000, 3000, 10_000) if d <= limit]
    return st.integers(0, limit) | st.sampled_from(marks)


nested_json = st.builds(
    lambda depth, shape: {
        "open": "[" * depth,
        "array": "[" * depth + "]" * depth,
        "object": '{"a":' * depth + "1" + "}" * depth,
    }[shape],
    depths(MAX_TOKEN_NESTING),
    st.sampled_from(["open", "array", "object"]),
)
json_like_text = st.text(alphabet='{}[]":,0123456789.eE+-truefalsn \\u', max_size=60)
segments = st.one_of(
    st.text(alphabet=B64URL, max_size=120),  # base64url noise, often not canonical
    st.binary(max_size=96).map(b64),  # canonical base64url of any bytes
    header_objects.map(json.dumps).map(b64),
    claim_objects.map(json.dumps).map(b64),
    json_values(20).map(json.dumps).map(b64),
    json_like_text.map(b64),
    nested_json.map(b64),
)
signatures = st.binary(min_size=64, max_size=64).map(b64) | segments
jwt_shaped = st.one_of(
    st.tuples(header_objects.map(json.dumps).map(b64), segments, signatures).map(".".join),
    st.tuples(nested_json.map(b64), segments, signatures).map(".".join),
    st.lists(segments, max_size=5).map(".".join),
)
bytes_as_text = st.one_of(
    st.binary(max_size=300).map(lambda raw: raw.decode("latin-1")),
    st.binary(max_size=300).map(lambda raw: raw.decode("utf-8", "surrogateescape")),
)
huge_tokens = st.builds(
    lambda size, filler: (filler * size)[:size],
    st.integers(4000, 9000),
    st.sampled_from(["A", "A.", "e30.", "\u00e9", "."]),
)
random_tokens = st.one_of(
    st.text(alphabet=ALL_CHARACTERS, max_size=300),
    bytes_as_text,
    st.text(alphabet=B64URL + ".=+/ \t\n\r\x00", max_size=300),
    jwt_shaped,
    huge_tokens,
)


# ---------------------------------------------------------------------------------------
# Strategies: mutations of a valid token
# ---------------------------------------------------------------------------------------


def _lenient_b64decode(segment: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        return None


def _json_or_none(raw: bytes | None) -> Any:
    try:
        return None if raw is None else json.loads(raw)
    except ValueError:
        return None


@dataclass(frozen=True)
class Flip:
    """Replace the character at a position."""

    at: int
    char: str

    def __call__(self, token: str) -> str:
        if not token:
            return self.char
        i = self.at % len(token)
        return token[:i] + self.char + token[i + 1 :]


@dataclass(frozen=True)
class Insert:
    at: int
    text: str

    def __call__(self, token: str) -> str:
        i = self.at % (len(token) + 1)
        return token[:i] + self.text + token[i:]


@dataclass(frozen=True)
class Delete:
    at: int
    length: int

    def __call__(self, token: str) -> str:
        if not token:
            return token
        i = self.at % len(token)
        return token[:i] + token[i + self.length :]


@dataclass(frozen=True)
class Truncate:
    keep: int
    from_end: bool

    def __call__(self, token: str) -> str:
        return token[len(token) - self.keep :] if self.from_end else token[: self.keep]


@dataclass(frozen=True)
class Rearrange:
    """Rebuild the token from its segments by index: swaps, drops and duplicates."""

    order: tuple[int, ...]

    def __call__(self, token: str) -> str:
        parts = token.split(".")
        return ".".join(parts[i % len(parts)] for i in self.order)


Style = Literal[
    "padded",
    "standard",
    "noncanonical",
    "json-spaced",
    "json-sorted",
    "json-escaped",
    "json-space-after",
    "json-bom",
    "json-duplicate",
]
STYLES: tuple[Style, ...] = get_args(Style)


@dataclass(frozen=True)
class Reencode:
    """Spell one segment differently: other base64 forms, or the same JSON in other bytes."""

    segment: int
    style: Style

    def __call__(self, token: str) -> str:
        parts = token.split(".")
        i = self.segment % len(parts)
        raw = _lenient_b64decode(parts[i])
        if raw is not None:
            parts[i] = self._respell(parts[i], raw)
        return ".".join(parts)

    def _respell(self, segment: str, raw: bytes) -> str:
        if self.style == "padded":
            return base64.urlsafe_b64encode(raw).decode()
        if self.style == "standard":
            return base64.b64encode(raw).decode()
        if self.style == "noncanonical":  # flip the lowest bit of the last character
            if not segment or segment[-1] not in B64URL:
                return segment
            return segment[:-1] + B64URL[B64URL.index(segment[-1]) ^ 1]
        if self.style == "json-bom":
            return b64(b"\xef\xbb\xbf" + raw)
        if self.style == "json-space-after":
            return b64(raw + b" ")
        value = _json_or_none(raw)
        if not isinstance(value, dict) or not value:
            return segment
        if self.style == "json-spaced":
            return b64(json.dumps(value, indent=1))
        if self.style == "json-sorted":
            return b64(json.dumps(value, sort_keys=True, separators=(",", ":")))
        text = json.dumps(value, separators=(",", ":"))
        if self.style == "json-escaped":  # the same names, spelled with \u escapes
            return b64(re.sub(r'"([a-z])', lambda m: f'"\\u{ord(m.group(1)):04x}', text))
        name, member = next(iter(value.items()))  # json-duplicate: repeat the first member
        return b64(f"{text[:-1]},{json.dumps(name)}:{json.dumps(member)}}}")


@dataclass(frozen=True)
class Resign:
    """Change (or remove) one header or payload member, then sign with ATTACKER_KEY."""

    part: Literal["header", "payload"]
    member: str | None  # None: change nothing, only the key
    value: Any
    remove: bool

    def __call__(self, token: str) -> str:
        parts = token.split(".")
        header = _json_or_none(_lenient_b64decode(parts[0]))
        payload = _json_or_none(_lenient_b64decode(parts[1])) if len(parts) > 1 else None
        if not isinstance(header, dict):
            header = {"alg": "EdDSA", "kid": KEY.kid, "typ": "at+jwt"}
        if not isinstance(payload, dict):
            payload = {}
        edited = header if self.part == "header" else payload
        if self.member is not None:
            if self.remove:
                edited.pop(self.member, None)
            else:
                edited[self.member] = self.value
        signing_input = f"{b64(json.dumps(header))}.{b64(json.dumps(payload))}"
        return f"{signing_input}.{b64(ATTACKER_KEY.private.sign(signing_input.encode()))}"


Mutation = Flip | Insert | Delete | Truncate | Rearrange | Reencode | Resign


def mutations(chars: st.SearchStrategy[str]) -> st.SearchStrategy[tuple[Mutation, ...]]:
    """One to four edits of a token, applied in order."""
    positions = st.integers(0, 5000)
    one: st.SearchStrategy[Mutation] = st.one_of(
        st.builds(Flip, positions, chars),
        st.builds(Insert, positions, st.text(alphabet=chars, min_size=1, max_size=4)),
        st.builds(Delete, positions, st.integers(1, 8)),
        st.builds(Truncate, st.integers(0, 400), st.booleans()),
        st.builds(Rearrange, st.lists(st.integers(0, 3), min_size=1, max_size=4).map(tuple)),
        st.builds(Reencode, st.integers(0, 2), st.sampled_from(STYLES)),
        st.builds(
            Resign,
            st.sampled_from(["header", "payload"]),
            st.none() | st.sampled_from(HEADER_MEMBERS + CLAIM_MEMBERS) | st.text(max_size=6),
            st.sampled_from(["admin", ["admin"], KEY.kid, "EdDSA", "at+jwt", 9e12]) | json_values(),
            st.booleans(),
        ),
    )
    return st.lists(one, min_size=1, max_size=4).map(tuple)


TOKEN_CHARS = st.sampled_from(B64URL + ".=+/ ") | ALL_CHARACTERS
HEADER_CHARS = st.sampled_from(B64URL + ".=+/~ ") | st.characters(
    min_codepoint=0x21, max_codepoint=0x7E
)


def mutate(token: str, edits: Sequence[Mutation]) -> str:
    for edit in edits:
        token = edit(token)
    return token


def signing_input(token: str) -> bytes:
    return token.rsplit(".", 1)[0].encode("utf-8", "surrogatepass")


# ---------------------------------------------------------------------------------------
# The verifier
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    verifier: Verifier
    token: str  # signed by KEY, valid for 300 s
    claims: AccessClaims


@pytest.fixture
async def target(settings: Settings, store: Store) -> AsyncIterator[Target]:
    """A started verifier trusting KEY (as tests/security/test_token_attacks.deployment).

    Freshness is not what these properties test: a long staleness bound keeps a busy
    host's pause between examples from turning a rejection into "stale".
    """
    await store.signing.publish_key(KEY.kid, json.dumps(KEY.public.jwk), "epoch")
    await store.signing.align_epochs()
    async with Verifier(settings.with_overrides(max_staleness_s=60.0)) as verifier:
        token = Forge(KEY, settings.tokens.issuer, settings.tokens.audience).signed()
        yield Target(verifier, token, verifier.verify(token))


@budget(300)
@given(token=random_tokens)
async def test_random_tokens_are_only_ever_rejected(target: Target, token: str) -> None:
    """Random text, bytes read as text and JWT-shaped junk: ``verify`` never returns and
    raises nothing but TokenRejected, with a reason from before the signature check."""
    with pytest.raises(TokenRejected) as caught:  # any other exception fails the test
        target.verifier.verify(token)
    event(caught.value.code)
    assert caught.value.code in BEFORE_SIGNATURE


@budget(300)
@given(edits=mutations(TOKEN_CHARS))
async def test_mutated_tokens_are_rejected_unless_unchanged(
    target: Target, edits: tuple[Mutation, ...]
) -> None:
    """Flip, insert, delete, truncate, swap segments, re-encode, change a member and re-sign
    with another key: the verifier refuses every token other than the one KEY signed.

    Why an accepted token cannot differ from the original as a string: accepted means
    three segments, each strict *canonical* base64url (decode._b64decode re-encodes the
    bytes and demands the same text back), so each segment is the one spelling of its
    bytes; and an Ed25519 signature by KEY over the header and payload bytes. KEY signed
    exactly one message here, and Ed25519 (RFC 8032 verification, as in OpenSSL, refuses
    S >= L) is strongly unforgeable: no other message and no other signature of the same
    message verifies. Same bytes, each with one spelling: the same string. Without the
    canonical check, a base64 spelling with other unused low bits would be accepted.
    """
    mutated = mutate(target.token, edits)
    try:
        claims = target.verifier.verify(mutated)
    except TokenRejected as exc:
        reason = exc.code
    else:
        reason = "accepted"
    event(reason)
    if reason != "accepted":
        assert mutated != target.token, "the untouched token was refused"
        assert reason in BEFORE_SIGNATURE
        return
    assert signing_input(mutated) == signing_input(target.token)
    assert claims == target.claims
    assert mutated == target.token


_NETWORK_CALLS = (
    "connect",
    "connect_ex",
    "send",
    "sendall",
    "sendto",
    "sendmsg",
    "recv",
    "recv_into",
    "recvfrom",
    "recvfrom_into",
    "recvmsg",
)


@contextlib.contextmanager
def no_network() -> Iterator[list[str]]:
    """Record (and fail) any socket use in this block; yields the list of calls."""
    used: list[str] = []
    cls = socket.socket
    own = {name: cls.__dict__[name] for name in _NETWORK_CALLS if name in cls.__dict__}

    def spy(name: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            used.append(name)
            raise AssertionError(f"socket.{name} called during verify")

        return call

    for name in _NETWORK_CALLS:
        setattr(cls, name, spy(name))
    try:
        yield used
    finally:
        for name in _NETWORK_CALLS:
            if name in own:
                setattr(cls, name, own[name])
            else:
                delattr(cls, name)


def verify_all(verifier: Verifier, tokens: list[str]) -> tuple[list[str], list[str]]:
    """Verify every token in one synchronous stretch (the event loop cannot run meanwhile).

    Returns each outcome ("accepted" or the reason) and any socket calls made.
    """
    outcomes: list[str] = []
    with no_network() as used:
        for token in tokens:
            try:
                result = verifier.verify(token)
            except TokenRejected as exc:
                outcomes.append(exc.code)
            else:
                assert not inspect.isawaitable(result)
                outcomes.append("accepted")
    return outcomes, used


@budget(25)
@given(
    junk=st.lists(random_tokens, min_size=5, max_size=40),
    edits=st.lists(mutations(TOKEN_CHARS), max_size=20),
)
async def test_verify_writes_nothing_and_does_no_io(
    target: Target, redis: Redis, junk: list[str], edits: list[tuple[Mutation, ...]]
) -> None:
    """A batch of tokens (junk, mutations and the valid one) through ``verify``.

    Proven: (1) ``verify`` is a plain function returning plain claims, never an
    awaitable; (2) the whole batch ran without yielding to the event loop, so the
    verifier's async Redis client could not send a command on its behalf, and no
    socket was touched at all (connect/send/recv of socket.socket were replaced by
    failing spies for the batch), so no synchronous I/O either; (3) the batch
    scheduled no task that could act later; (4) the deployment's keyspace (every key
    and value under the prefix, tests.test_errors.dump) is the same before and after,
    even once the loop ran again.

    Not proven, on purpose: that Redis saw no commands. The verifier's follower polls
    Redis all the time (read-only scripts and XREAD), so INFO total_commands_processed
    moves regardless of verify; only the keyspace can tell that nothing was written.
    """
    assert not inspect.iscoroutinefunction(Verifier.verify)
    tokens = [*junk, target.token, *(mutate(target.token, e) for e in edits)]
    prefix = target.verifier.settings.redis.key_prefix
    before = await dump(redis, prefix)
    tasks = asyncio.all_tasks()
    outcomes, socket_calls = verify_all(target.verifier, tokens)
    assert asyncio.all_tasks() == tasks
    assert socket_calls == []
    assert outcomes[len(junk)] == "accepted"
    await asyncio.sleep(0.01)  # let the loop (and anything verify might have queued) run
    assert await dump(redis, prefix) == before


DEEP_HEADER_TOKEN = f"{b64('[' * 2000)}.e30.AAAA"  # 2,676 characters: under the 4 KiB limit


async def test_regression_nested_header_is_rejected(target: Target) -> None:
    with pytest.raises(TokenRejected) as caught:
        target.verifier.verify(DEEP_HEADER_TOKEN)
    assert caught.value.code == "malformed_token"


# ---------------------------------------------------------------------------------------
# The issuer's HTTP routes
# ---------------------------------------------------------------------------------------

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
FIELDS = [
    "username",
    "password",
    "refresh_token",
    "current_password",
    "new_password",
    "roles",
    "reason",
    "token",
    "token_type_hint",
    "grant_type",
    "client_id",
    "client_secret",
    "scope",
]
Who = Literal["admin", "user", "none"]


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # "{target}" is replaced by the moderated user's id
    media_type: str
    who: Who  # whose bearer token the route normally gets


SET_TYPE = "application/secevent+jwt"
ROUTES = {
    "login": Route("POST", "/v1/login", JSON, "none"),
    "refresh": Route("POST", "/v1/refresh", JSON, "none"),
    "token": Route("POST", "/oauth/token", FORM, "none"),
    "revoke": Route("POST", "/oauth/revoke", FORM, "none"),
    "introspect": Route("POST", "/oauth/introspect", FORM, "admin"),
    "password": Route("POST", "/v1/password", JSON, "user"),
    "roles": Route("PUT", "/v1/admin/users/{target}/roles", JSON, "admin"),
    # SSF transmitter (issue 19): streams are poll streams only here (a push stream would
    # send SETs to whatever URL the fuzz drew); polls go to a stream that does not exist,
    # so that a well-formed poll is not a 10 s long poll.
    "ssf_stream": Route("POST", "/ssf/stream", JSON, "admin"),
    "ssf_verify": Route("POST", "/ssf/verify", JSON, "admin"),
    "ssf_poll": Route("POST", "/ssf/poll/ssf_none", JSON, "admin"),
    # The upstream IdP's receivers (the stage configures an IdP, so calls reach the checks).
    "backchannel": Route("POST", "/v1/signals/backchannel-logout", FORM, "none"),
    "events": Route("POST", "/v1/signals/events", SET_TYPE, "none"),
}
# RFC 8935's refusals are {"err", "description"}; everything else is {"error", ...}.
ERROR_MEMBER = {"/v1/signals/events": ("err", "error")}


@dataclass(frozen=True)
class Bearer:
    """``Bearer <token>`` with the admin's or the user's real token, maybe mutated."""

    who: Literal["admin", "user"]
    edits: tuple[Mutation, ...] = ()


@dataclass(frozen=True)
class RawHeader:
    value: bytes


Auth = Bearer | RawHeader | None


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    auth: Auth
    content_type: str | None
    body: bytes


@dataclass(frozen=True)
class Stage:
    issuer: Issuer
    tokens: dict[str, str]  # "admin" and "user" access tokens
    target_uid: str  # the user whose roles the fuzz changes (not the admin, not the user)

    def headers(self, call: Call) -> dict[bytes, bytes]:
        headers: dict[bytes, bytes] = {}
        if call.content_type is not None:
            headers[b"Content-Type"] = call.content_type.encode("latin-1")
        if isinstance(call.auth, RawHeader):
            headers[b"Authorization"] = call.auth.value
        elif isinstance(call.auth, Bearer):
            token = mutate(self.tokens[call.auth.who], call.auth.edits)
            headers[b"Authorization"] = f"Bearer {token}".strip().encode("latin-1")
        return headers

    async def send(self, call: Call) -> httpx.Response:
        path = call.path.replace("{target}", self.target_uid)
        return await self.issuer.http.request(
            call.method, path, content=call.body, headers=self.headers(call)
        )


IDP, IDP_AUDIENCE = "https://idp.example.com", "revocast-rp"
IDP_KEY = ec.generate_private_key(ec.SECP256R1())  # the upstream IdP's, as a PEM setting


@pytest.fixture
async def stage(settings: Settings, redis: Redis) -> AsyncIterator[Stage]:
    """An issuer with login throttling off (the fuzz makes hundreds of failed logins) and an
    upstream IdP configured, an admin ("root"), a user ("alice", password fuzz) and a
    moderated user ("bob")."""
    idp_pem = IDP_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    opened = settings.with_overrides(
        login_max_attempts_per_client=0, login_max_failures_per_user=0,
        upstream_issuer=IDP, upstream_audience=IDP_AUDIENCE, upstream_key=idp_pem.decode(),
    )  # fmt: skip
    app = create_app(opened)
    async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        issuer = Issuer(url, http, opened, app)
        await issuer.add_user("root", ["admin"])
        await issuer.add_user("alice")
        bob = await issuer.add_user("bob")
        tokens = {
            "admin": (await issuer.login("root"))["access_token"],
            "user": (await issuer.login("alice"))["access_token"],
        }
        yield Stage(issuer, tokens, bob)


def check_reply(call: Call, reply: httpx.Response) -> None:
    """Never a 500; every error is the JSON error shape (RFC 8935's on the SET receiver)."""
    assert reply.status_code < 500, (call, reply.status_code, reply.text[:500])
    if reply.status_code >= 400 and call.method != "HEAD":
        assert reply.headers.get("content-type") == JSON, (call, reply.headers)
        body = reply.json()
        assert isinstance(body, dict), (call, body)
        member = next(m for m in (*ERROR_MEMBER.get(call.path, ()), "error") if m in body)
        assert isinstance(body[member], str), (call, body)
        assert body[member], (call, body)


field_values = st.one_of(
    st.text(max_size=80),
    st.sampled_from(["alice", "root", "bob", "correct horse", "admin", "refresh_token"]),
    st.lists(
        st.from_regex(r"[a-z][a-z0-9_:-]{0,31}", fullmatch=True) | st.text(max_size=10), max_size=40
    ),
    json_values(),
)
json_documents = st.one_of(
    json_values(30),  # any JSON value
    st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=12), field_values, max_size=6),
    st.fixed_dictionaries({"username": field_values, "password": field_values}),
    st.fixed_dictionaries({"refresh_token": field_values}),
    st.fixed_dictionaries({"current_password": field_values, "new_password": field_values}),
    st.fixed_dictionaries({"roles": field_values}, optional={"reason": field_values}),
)
json_bodies = st.builds(
    lambda value, ascii_only: json.dumps(value, ensure_ascii=ascii_only).encode(),
    json_documents,
    st.booleans(),
)
huge_bodies = st.builds(
    lambda field, size: json.dumps({field: "x" * size}).encode(),
    st.sampled_from(FIELDS),
    st.integers(500, 40_000),  # up to and past the 16 KiB limit
)
deep_bodies = st.builds(
    lambda depth, inside: (inside % ("[" * depth + "]" * depth)).encode(),
    depths(10_000),
    st.sampled_from(
        [
            "%s",
            '{"roles": %s}',
            '{"username": %s, "password": "x"}',
            '{"refresh_token": %s}',
            '{"reason": "x", "roles": [%s]}',
            '{"delivery": {"x": %s}}',  # SSF: an object of any values, where msgspec recursed
            '{"setErrs": {"j": %s}}',
        ]
    ),
)
invalid_utf8_bodies = st.builds(
    lambda field, junk: b'{"' + field.encode() + b'": "' + junk + b'"}',
    st.sampled_from(FIELDS),
    st.lists(st.integers(0x80, 0xFF) | st.sampled_from(b"ax "), min_size=1, max_size=6).map(bytes),
)
form_pairs = st.lists(
    st.tuples(
        st.sampled_from(["token", "token_type_hint"]) | st.text(max_size=8),
        st.text(max_size=60) | st.sampled_from(["refresh_token", "access_token"]) | jwt_shaped,
    ),
    max_size=4,
)
form_bodies = st.one_of(
    form_pairs.map(lambda pairs: urlencode(pairs).encode()),
    st.text(alphabet="token_ypehint=&%+;0123456789ABCDEFxyz\u00e9", max_size=60).map(
        lambda text: text.encode()
    ),
)
bodies = st.one_of(
    json_bodies,
    form_bodies,
    st.binary(max_size=600),
    huge_bodies,
    deep_bodies,
    invalid_utf8_bodies,
    st.just(b""),
)
OTHER_MEDIA_TYPES = [
    JSON,
    SET_TYPE,
    f"{JSON}; charset=utf-8",
    "APPLICATION/JSON",
    FORM,
    f"{FORM}; charset=latin-1",
    "text/plain",
    "multipart/form-data; boundary=x",
    "",
    ";",
    "application/json;;;",
]
header_text = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E)
    | st.characters(min_codepoint=0x80, max_codepoint=0xFF),
    max_size=120,
).map(lambda text: text.strip(" ").encode("latin-1"))
raw_authorizations = st.one_of(
    header_text,
    st.builds(
        lambda scheme, rest: (scheme + rest).strip().encode(),
        st.sampled_from(["Bearer ", "bearer ", "BEARER  ", "Bearer", "Basic ", "Bearer\t"]),
        st.text(alphabet=B64URL + ".~+/=", max_size=200) | jwt_shaped.filter(str.isascii),
    ),
)


def authorizations(who: Who) -> st.SearchStrategy[Auth]:
    """Mostly the route's normal credentials, else mutated ones, junk or none."""
    mine: Auth = None if who == "none" else Bearer(who)
    others: st.SearchStrategy[Auth] = st.one_of(
        st.builds(Bearer, st.sampled_from(["admin", "user"]), mutations(HEADER_CHARS)),
        raw_authorizations.map(RawHeader),
        st.none(),
    )
    return weighted(st.just(mine), others)


def weighted(
    usual: st.SearchStrategy[Any], unusual: st.SearchStrategy[Any]
) -> st.SearchStrategy[Any]:
    """``usual`` three times in four (``one_of`` alone would pick each branch equally)."""
    return st.integers(0, 3).flatmap(lambda n: unusual if n == 0 else usual)


path_ids = st.one_of(
    st.just("{target}"),
    st.text(alphabet=B64URL, min_size=1, max_size=70),
    st.text(max_size=20).map(lambda text: quote(text, safe="")),
)
words = st.text(min_size=1, max_size=40) | st.sampled_from(["alice", "root", "bob", "admin"])
passwords = st.text(min_size=8, max_size=60) | st.text(max_size=8)  # 8: the minimum length
roles = st.from_regex(r"[a-z][a-z0-9_:-]{0,31}", fullmatch=True)


def as_json(shape: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[bytes]:
    return shape.map(lambda value: json.dumps(value).encode())


def as_form(pairs: st.SearchStrategy[list[tuple[str, str]]]) -> st.SearchStrategy[bytes]:
    return pairs.map(lambda value: urlencode(value).encode())


hints = st.sampled_from(["refresh_token", "access_token", "", "id_token"]) | st.text(max_size=8)
grant_types = st.sampled_from(["password", "refresh_token", "client_credentials", ""])
client_ids = st.sampled_from(["revocast", "c_unknown", ""]) | st.text(max_size=20)
scopes = st.lists(roles | st.text(max_size=6), max_size=4).map(" ".join)
form_tokens = (
    jwt_shaped | st.text(min_size=1, max_size=200) | st.text(B64URL, min_size=43, max_size=43)
)
# Bodies of the right shape and types for each route, so the fuzz reaches its logic
# (credential checks, refresh lookups, password and role changes, token lookups).
TYPED_BODIES: dict[str, st.SearchStrategy[bytes]] = {
    "login": as_json(
        st.fixed_dictionaries(
            {"username": words, "password": words},
            optional={"client_id": client_ids, "client_secret": words, "scope": scopes},
        )
    ),
    "token": as_form(
        st.lists(
            st.tuples(
                st.sampled_from(
                    [
                        "grant_type",
                        "username",
                        "password",
                        "refresh_token",
                        "scope",
                        "client_id",
                        "client_secret",
                    ]
                ),
                grant_types | words | form_tokens | scopes | client_ids,
            ),
            max_size=8,
        )
    ),
    "refresh": as_json(st.fixed_dictionaries({"refresh_token": form_tokens})),
    "password": as_json(
        st.fixed_dictionaries({"current_password": words, "new_password": passwords})
    ),
    "roles": as_json(
        st.fixed_dictionaries(
            {"roles": st.lists(roles, max_size=40) | st.lists(st.text(max_size=10), max_size=3)},
            optional={"reason": st.text(max_size=600)},
        )
    ),
    "revoke": as_form(
        st.tuples(st.just("token"), form_tokens).map(lambda pair: [pair])
        | st.tuples(
            st.tuples(st.just("token"), form_tokens), st.tuples(st.just("token_type_hint"), hints)
        ).map(list)
    ),
}
TYPED_BODIES["introspect"] = TYPED_BODIES["revoke"]
POLL, PUSH = "urn:ietf:rfc:8936", "urn:ietf:rfc:8935"
short_texts = st.text(max_size=20)
TYPED_BODIES |= {
    "ssf_stream": as_json(
        st.fixed_dictionaries(
            {},
            optional={
                "delivery": st.fixed_dictionaries({"method": st.sampled_from([POLL, "x"])})
                | st.dictionaries(short_texts, json_values()),
                "events_requested": st.lists(short_texts | st.integers(), max_size=20),
                "description": st.text(max_size=600),
                "aud": short_texts | st.integers(),
                "x": json_values(),
            },
        )
    ),
    "ssf_verify": as_json(
        st.fixed_dictionaries(
            {"stream_id": short_texts | st.integers()}, optional={"state": short_texts}
        )
    ),
    "ssf_poll": as_json(
        st.fixed_dictionaries(
            {},
            optional={
                "ack": st.lists(short_texts | st.none(), max_size=5),
                "maxEvents": st.integers(-5, 2000) | short_texts,
                "returnImmediately": st.booleans() | st.integers(),
                "setErrs": st.dictionaries(short_texts, json_values()),
            },
        )
    ),
    "backchannel": as_form(
        st.lists(
            st.tuples(st.sampled_from(["logout_token"]) | st.text(max_size=8), form_tokens),
            max_size=3,
        )
    ),
    "events": (jwt_shaped | st.text(max_size=300)).map(lambda text: text.encode()),
}


@st.composite
def route_calls(draw: st.DrawFn, names: Sequence[str] = tuple(ROUTES)) -> Call:
    name = draw(st.sampled_from(names))
    route = ROUTES[name]
    path = route.path
    if "{target}" in path:
        path = path.replace("{target}", draw(weighted(st.just("{target}"), path_ids)))
    content_type = draw(
        weighted(st.just(route.media_type), st.sampled_from(OTHER_MEDIA_TYPES) | st.none())
    )
    auth = draw(authorizations(route.who))
    body = draw(st.one_of(TYPED_BODIES[name], bodies))
    return Call(route.method, path, auth, content_type, body)


@budget(300)
@given(call=route_calls())
async def test_routes_never_answer_500(stage: Stage, call: Call) -> None:
    """Random bodies (any JSON value, objects with random members, the routes' own fields with
    values of any type, random bytes, huge strings, deeply nested arrays, form bodies, JWT-
    shaped text) under random media types and credentials, to /v1/login, /v1/refresh,
    /oauth/token, /oauth/revoke, /oauth/introspect, /v1/password, PUT
    /v1/admin/users/{uid}/roles, the SSF transmitter (POST /ssf/stream, /ssf/verify,
    /ssf/poll/{id}) and the IdP's receivers (/v1/signals/backchannel-logout and /events):
    every answer is below 500, and every error is JSON with an "error" member ("err" for
    RFC 8935's refusals)."""
    reply = await stage.send(call)
    event(f"{call.method} {call.path.split('/')[-1]} -> {reply.status_code} {reply.text[:40]}")
    check_reply(call, reply)


@budget(150)
@given(call=route_calls(("login", "refresh", "token")))
async def test_rejected_login_and_refresh_write_nothing(
    stage: Stage, redis: Redis, call: Call
) -> None:
    """A refused /v1/login, /v1/refresh or /oauth/token (any status >= 400) leaves every key
    and value under the prefix as it was (login throttle counters excepted, as dump() does)."""
    prefix = stage.issuer.settings.redis.key_prefix
    before = await dump(redis, prefix)
    reply = await stage.send(call)
    event(f"{call.path} -> {reply.status_code}")
    check_reply(call, reply)
    if reply.status_code >= 400:
        assert await dump(redis, prefix) == before, call


METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
PATH_PREFIXES = [
    "/",
    "/v1/",
    "/v1/sessions/",
    "/v1/admin/users/",
    "/v1/admin/sessions/",
    "/oauth/",
    "/.well-known/",
    "/v1/login/",
    "/%2e%2e/",
]


@st.composite
def random_paths(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.text(max_size=12), max_size=4))
    tail = "/".join(quote(part, safe="") for part in parts)
    return (draw(st.sampled_from(PATH_PREFIXES)) + tail).replace("//", "/")


@st.composite
def probing_calls(draw: st.DrawFn) -> Call:
    """GET /v1/sessions with any Authorization, or any method on any path.

    Only the user's token, mutated or not, never the admin's: a random path must not
    reach a moderator action.
    """
    auth = draw(
        st.one_of(
            st.just(Bearer("user")),
            st.builds(Bearer, st.just("user"), mutations(HEADER_CHARS)),
            raw_authorizations.map(RawHeader),
            st.none(),
        )
    )
    if draw(st.booleans()):
        return Call("GET", "/v1/sessions", auth, None, b"")
    return Call(draw(st.sampled_from(METHODS)), draw(random_paths()), auth, None, b"")


@budget(200)
@given(call=probing_calls())
async def test_random_paths_and_authorization_never_answer_500(stage: Stage, call: Call) -> None:
    """Any path and method, any Authorization header (junk, other schemes, mutated tokens,
    JWT-shaped junk): below 500, and every error is JSON with an "error" member."""
    reply = await stage.send(call)
    event(f"{call.method} -> {reply.status_code}")
    check_reply(call, reply)


DEEP_TOKEN_FORM = f"token={DEEP_HEADER_TOKEN}".encode()
BUG_1_CALLS = [
    Call("GET", "/v1/sessions", RawHeader(f"Bearer {DEEP_HEADER_TOKEN}".encode()), None, b""),
    Call("POST", "/v1/logout", RawHeader(f"Bearer {DEEP_HEADER_TOKEN}".encode()), None, b""),
    Call("POST", "/oauth/revoke", None, FORM, DEEP_TOKEN_FORM),
    Call("POST", "/oauth/introspect", Bearer("admin"), FORM, DEEP_TOKEN_FORM),
]
BUG_2_CALLS = [
    Call("POST", "/v1/login", None, JSON, b'{"username": "\xff", "password": "x"}'),
    Call("POST", "/v1/refresh", None, JSON, b'{"refresh_token": "\xff"}'),
    Call("POST", "/v1/password", Bearer("user"), JSON, b'{"current_password": "\xff"}'),
    Call("PUT", "/v1/admin/users/{target}/roles", Bearer("admin"), JSON, b'{"\xff": 1}'),
]


DEEP = b"[" * 5000 + b"]" * 5000
BUG_3_CALLS = [  # issue 19 point 13: msgspec recursed out of stack in an object of any values
    Call("POST", "/ssf/stream", Bearer("admin"), JSON, b'{"delivery": {"x": %s}}' % DEEP),
    Call("POST", "/ssf/verify", Bearer("admin"), JSON, b'{"stream_id": "s", "x": %s}' % DEEP),
    Call("POST", "/ssf/poll/ssf_none", Bearer("admin"), JSON, b'{"setErrs": {"j": %s}}' % DEEP),
]


@pytest.mark.parametrize("call", BUG_3_CALLS, ids=lambda call: call.path)
async def test_regression_deep_json_in_an_ssf_body_is_not_a_500(stage: Stage, call: Call) -> None:
    check_reply(call, await stage.send(call))


@pytest.mark.parametrize("call", BUG_1_CALLS, ids=lambda call: call.path)
async def test_regression_nested_header_is_not_a_500(stage: Stage, call: Call) -> None:
    check_reply(call, await stage.send(call))


@pytest.mark.parametrize("call", BUG_2_CALLS, ids=lambda call: call.path)
async def test_regression_invalid_utf8_in_json_string_is_not_a_500(
    stage: Stage, call: Call
) -> None:
    check_reply(call, await stage.send(call))
