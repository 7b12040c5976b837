"""Invariants 1 and 2, judged on every probe of a run after the fact.

Invariant 1, no acceptance after revocation. A probe sent more than ``bound_s``
(the verifiers' max staleness) after a revocation was acknowledged must not be
accepted. Why that bound: the revocation's event was written before the
acknowledgement arrived (at t_r). A verifier answers 200 only while it is fresh,
i.e. it sent a stream read at most max_staleness ago whose reply proved it had
every entry up to that read's sending. A probe sent after t_r + max_staleness
is answered later still, so that read left after t_r and saw the event.

Invariant 2, every answer is correct or stale. A live token gets 200 naming its
own user and session, or 503. A 401 is legitimate only once a revocation could
have been written (its request was sent before the probe's answer came back),
after a data loss (tokens minted before it are revoked), or at expiry; any
other 401 is a false rejection. One more is tolerated and counted apart:
``unknown_key`` within the bound after the login, when the issuer had just
rotated to a key (after a data loss) that the verifier had yet to read.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from revocast_tools.chaos.ledger import Ledger, Probe, TokenRecord

EXAMPLES = 5


@dataclass(slots=True)
class Verdicts:
    probes: int = 0
    accepted: int = 0
    rejected: int = 0
    stale: int = 0
    no_answer: int = 0  # transport errors: a verifier down, not a wrong answer
    accepted_in_window: int = 0  # revoked, accepted, but within the bound
    accepted_after_revocation: int = 0  # invariant 1
    wrong_identity: int = 0  # 200 naming another user or session (invariant 2)
    false_rejections: int = 0  # invariant 2
    bad_answers: int = 0  # neither 200, 401 nor 503 (invariant 2)
    expired: int = 0
    unknown_new_key: int = 0  # unknown_key within the bound after the login
    uncertain: int = 0  # tokens logged in across a data loss: not judged
    max_accept_after_ack_s: float = 0.0  # latest acceptance of a revoked token, after its ack
    false_rejection_codes: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        if len(self.examples) < EXAMPLES:
            self.examples.append(text)


def judge(ledger: Ledger, bound_s: float) -> Verdicts:
    verdicts = Verdicts()
    for probe in ledger.probes:
        _judge_one(verdicts, ledger, ledger.tokens[probe.token], probe, bound_s)
    return verdicts


def _judge_one(
    v: Verdicts, ledger: Ledger, token: TokenRecord, probe: Probe, bound_s: float
) -> None:
    v.probes += 1
    if probe.status == 0:
        v.no_answer += 1
        return
    if ledger.uncertain(token):
        v.uncertain += 1
        return
    where = f"verifier{probe.verifier} token#{token.index}"
    if probe.status == 200:
        v.accepted += 1
        if (probe.subject, probe.session) != (token.uid, token.sid):
            v.wrong_identity += 1
            v.note(f"{where}: 200 for subject {probe.subject!r}, session {probe.session!r}")
        revoked = ledger.revoked_at(token)
        if revoked is not None and probe.sent > revoked:
            late = probe.sent - revoked
            v.max_accept_after_ack_s = max(v.max_accept_after_ack_s, late)
            if late > bound_s:
                v.accepted_after_revocation += 1
                v.note(f"{where}: accepted, probe sent {late:.3f}s after the revocation")
            else:
                v.accepted_in_window += 1
    elif probe.status == 401:
        v.rejected += 1
        maybe = ledger.maybe_revoked_from(token)
        if maybe is not None and maybe < probe.received:
            return
        if probe.received + ledger.wall_offset >= token.exp_s - 1.0:
            v.expired += 1
            return
        if probe.code == "unknown_key" and probe.sent <= token.minted_at + bound_s:
            v.unknown_new_key += 1
            return
        v.false_rejections += 1
        v.false_rejection_codes[probe.code] += 1
        v.note(f"{where}: live token refused with {probe.code!r}")
    elif probe.status == 503:
        v.stale += 1
    else:
        v.bad_answers += 1
        v.note(f"{where}: answered {probe.status} ({probe.code})")


def last_accepted_after(ledger: Ledger, since: float, verifiers: Iterable[int]) -> float:
    """Seconds from ``since`` to the latest probe sent after it that one of ``verifiers``
    accepted before its first 503 (0 if none).

    When ``since`` is the moment a verifier lost its source (a primary died, a
    replica stopped receiving), its last proof of freshness is older, so it must
    refuse everything sent later than max staleness after ``since``: a probe is
    answered after it was sent, and a 200 means the verifier was fresh then.
    """
    latest = 0.0
    for verifier in verifiers:
        probes = [p for p in ledger.probes if p.verifier == verifier and p.sent > since]
        first_stale = min((p.received for p in probes if p.status == 503), default=math.inf)
        for probe in probes:
            if probe.status == 200 and probe.sent < first_stale:
                latest = max(latest, probe.sent - since)
    return latest
