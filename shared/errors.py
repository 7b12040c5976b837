"""Every error revocast raises, each with a stable machine ``code``.

Clients branch on the code, which never changes; people read the ``detail``: one line that
says what went wrong, then what to do (``what: what to do``), without key names or secrets.
A class's ``explanation`` is the detail when the raiser has nothing more specific to say.

RevocastError
├── SettingsError            bad configuration
├── StoreUnavailable         Redis cannot be reached (HTTP 503)
│   └── RedisUnreachable     no connection or no answer at all (same code)
├── NotDurable               a revocation reached the primary, not enough replicas (HTTP 503)
├── Overloaded               as many password checks under way and queued as allowed (HTTP 503)
├── RequestError             a client request is wrong (HTTP 4xx)
│   ├── InvalidRequest       400: malformed body, missing or mistyped field
│   ├── BodyTooLarge         413
│   ├── UnsupportedMediaType 415: a body without its Content-Type, or in another one
│   ├── HeadersTooLarge      431: the request line and headers are over the bound in all
│   ├── InvalidCredentials   401: unknown user or wrong password
│   ├── InvalidRefreshToken  401: unknown, expired, revoked or reused refresh token
│   ├── InvalidGrant         400: RFC 6749 §5.2 invalid_grant, on the /oauth/* endpoints
│   ├── InvalidClient        401: unknown client, wrong or missing client secret
│   ├── InvalidScope         400: a scope the user does not hold
│   ├── UnsupportedGrantType 400: a grant_type /oauth/token does not know
│   ├── UserBlocked          403
│   ├── Forbidden            403: the caller lacks the authority
│   ├── WrongPassword        403: the current password given to change it is wrong
│   ├── InsufficientScope    403: the token carries none of the roles the route accepts
│   ├── CsrfFailed           403: a cookie-authenticated change without the CSRF proof
│   ├── NotFound             404
│   ├── TooManyAttempts      429: login throttled; ``retry_after_s`` says for how long
│   ├── TooManyRevocations   429: a caller's revocations past the rate limit; ``retry_after_s``
│   └── Conflict             409: e.g. the username is taken
├── NotApplied               --wait ran out before every live verifier applied a revocation
├── SigningKeyUnavailable    no usable signing key (HTTP 503)
├── TokenRejected            the access token must not be accepted (HTTP 401)
├── VerifierStale            the verifier cannot prove it is fresh (HTTP 503)
└── VerifierUnavailable      a gateway got no verdict from the sidecar (HTTP 503, deploy/)
"""

from __future__ import annotations


class RevocastError(Exception):
    """Root of revocast's errors."""

    code = "error"
    status = 500
    # What went wrong and what to do, one line, for when the raiser has nothing more specific.
    explanation = "revocast could not do this: retry, or see the server's log"

    def __init__(self, detail: str = "") -> None:
        detail = detail or self.explanation or self.code
        super().__init__(detail)
        self.detail = detail


class SettingsError(RevocastError):
    """A setting is missing or out of range."""

    code = "invalid_settings"
    explanation = "a setting is missing or out of range: check the REVOCAST_* environment"


class StoreUnavailable(RevocastError):
    """Redis did not answer; nothing was changed."""

    code = "store_unavailable"
    status = 503
    explanation = "Redis did not answer: retry in a moment"


class RedisUnreachable(StoreUnavailable):
    """No connection to Redis, or no answer on it: the one the CLI names the URL for."""


class Overloaded(RevocastError):
    """The password-hashing queue is full: refused at once rather than left to time out."""

    code = "temporarily_unavailable"
    status = 503
    explanation = (
        "the issuer is checking as many passwords as it can and has no room to queue more: "
        "retry in a moment"
    )

    def __init__(self, retry_after_s: int = 1) -> None:
        super().__init__()
        self.retry_after_s = retry_after_s  # about when the queue will have room


class NotDurable(RevocastError):
    """The primary made the change, but too few replicas confirmed it: repeat the request."""

    code = "not_durable"
    status = 503
    explanation = (
        "too few Redis replicas confirmed the change in time: repeat the request to make it durable"
    )


class RequestError(RevocastError):
    """The client sent something revocast will not act on."""

    code = "invalid_request"
    status = 400
    explanation = "the request is malformed or misses a field: correct it and send it again"


class InvalidRequest(RequestError):
    """Malformed JSON or a missing or mistyped field."""


class BodyTooLarge(RequestError):
    """The body exceeds the configured limit."""

    code = "body_too_large"
    status = 413
    explanation = "the body is larger than this server accepts: send a smaller one"


class UnsupportedMediaType(RequestError):
    """The body comes without a Content-Type, or in one this endpoint does not read: what
    it holds is not guessed."""

    code = "unsupported_media_type"
    status = 415
    explanation = "the body is not in the media type this endpoint reads: send its Content-Type"


class HeadersTooLarge(RequestError):
    """The request head (request line and headers) is over ``REVOCAST_MAX_HEADER_BYTES``:
    refused (RFC 6585 §5) before it is read whole."""

    code = "headers_too_large"
    status = 431
    explanation = "the request's headers are larger than this server accepts: send smaller ones"


class InvalidCredentials(RequestError):
    """Unknown user or wrong password; the two are not told apart."""

    code = "invalid_credentials"
    status = 401
    explanation = "unknown user or wrong password: check both and try again"


class InvalidRefreshToken(RequestError):
    """The refresh token is unknown, expired, revoked or was reused."""

    code = "invalid_grant"
    status = 401
    explanation = "the refresh token is unknown, expired, revoked or already used: log in again"


class InvalidGrant(RequestError):
    """RFC 6749 §5.2: the grant (user credentials, refresh token) is not valid, or the token
    belongs to another client. The /oauth/* endpoints answer it with 400."""

    code = "invalid_grant"
    explanation = "the credentials or the refresh token are not valid: log in again"


class InvalidClient(RequestError):
    """Client authentication failed (RFC 6749 §5.2); ``challenge`` is the WWW-Authenticate."""

    code = "invalid_client"
    status = 401
    explanation = "client authentication failed: send a registered client_id and its secret"

    def __init__(self, detail: str = "", challenge: str = 'Basic realm="revocast"') -> None:
        super().__init__(detail)
        self.challenge = challenge


class InvalidScope(RequestError):
    """The requested scope names a role the user does not hold."""

    code = "invalid_scope"
    explanation = "the scope names a role the user does not hold: ask only for roles the user has"


class UnsupportedGrantType(RequestError):
    """/oauth/token knows the grant types password and refresh_token."""

    code = "unsupported_grant_type"
    explanation = "this grant_type is not supported: use password or refresh_token"


class UserBlocked(RequestError):
    """A moderator blocked this user."""

    code = "user_blocked"
    status = 403
    explanation = (
        "a moderator blocked this user: login and refresh are refused until a moderator unblocks it"
    )


class Forbidden(RequestError):
    """The caller is authenticated but may not do this."""

    code = "forbidden"
    status = 403
    explanation = "your current roles do not allow this: ask an admin or a moderator to do it"


class WrongPassword(RequestError):
    """The current password, required to set a new one, does not match."""

    code = "wrong_password"
    status = 403
    explanation = "the current password does not match: send the password you log in with now"


class InsufficientScope(RequestError):
    """The token is good, but lacks every role the route asks for (RFC 6750 §3.1); ``roles``
    (space-separated) go in the challenge, for gateways that read it."""

    code = "insufficient_scope"
    status = 403

    def __init__(self, roles: str, detail: str = "") -> None:
        listed = ", ".join(roles.split())
        super().__init__(
            detail
            or f"this needs one of the roles {listed}, which the token lacks: use an account "
            "that holds one, or refresh the token after a role change"
        )
        self.roles = roles


class CsrfFailed(RequestError):
    """A state-changing request authenticated by cookie lacks a valid Origin or CSRF token."""

    code = "csrf_failed"
    status = 403
    explanation = (
        "a change made with the session cookie needs an allowed Origin and the X-CSRF-Token "
        "header: send both"
    )


class NotFound(RequestError):
    """No such user or session (or not one the caller may see)."""

    code = "not_found"
    status = 404
    explanation = "no such user or session, or not one you may see: check the name or id"


class TooManyAttempts(RequestError):
    """Too many login attempts from this client, or failures for this username."""

    code = "too_many_attempts"
    status = 429

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"too many login attempts: try again in {retry_after_s} s")
        self.retry_after_s = retry_after_s


class TooManyRevocations(RequestError):
    """The caller's revocations that write are past REVOCAST_REVOCATIONS_PER_MINUTE."""

    code = "too_many_revocations"
    status = 429

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(
            f"too many revocations by this caller within a minute: try again in "
            f"{retry_after_s} s (repeating one that was made is never refused)"
        )
        self.retry_after_s = retry_after_s


class Conflict(RequestError):
    """The resource already exists."""

    code = "conflict"
    status = 409
    explanation = "the name is taken: pick another one"


class NotApplied(RevocastError):
    """A revocation is in Redis, but some live verifiers had not applied it when the wait
    ended (they refuse it once they do, or fail closed once stale)."""

    code = "not_applied"
    explanation = (
        "not every live verifier confirmed the revocation in time: wait, then check its status"
    )


class SigningKeyUnavailable(RevocastError):
    """The active signing key is revoked or missing here; an operator must rotate."""

    code = "signing_key_unavailable"
    status = 503
    explanation = (
        "the signing key is revoked or missing here: an operator must run `revocast keys rotate`"
    )


class TokenRejected(RevocastError):
    """The access token is not acceptable; ``code`` says why."""

    status = 401
    explanation = "the access token is not accepted: log in again for a new one"

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(detail)
        self.code = code


class VerifierStale(RevocastError):
    """The verifier has not heard from the stream for longer than the staleness bound."""

    code = "verifier_stale"
    status = 503
    explanation = "the verifier cannot prove it has every recent revocation: retry in a moment"


class VerifierUnavailable(RevocastError):
    """A gateway in front of the sidecar got no verdict from it: refused, down, silent past
    the gateway's timeout, or (Envoy, which takes an HTTP authorization service's 5xx for a
    failure) a 5xx. No Python code raises it: the configs in deploy/ answer it themselves,
    with this code and explanation (tests/test_gateways.py holds them to it).
    """

    code = "verifier_unavailable"
    status = 503
    explanation = "the gateway got no verdict from the revocast verifier: retry in a moment"
