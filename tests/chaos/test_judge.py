"""The invariant rules on hand-made ledgers: what counts as a violation, and what does not."""

from __future__ import annotations

import base64
import json
import time

from revocast_tools.chaos.judge import judge, last_accepted_after
from revocast_tools.chaos.ledger import Ledger, Loss, Probe, TokenRecord
from revocast_tools.chaos.metrics import parse_gauge, parse_histogram

BOUND = 1.0


def token(ledger: Ledger, minted_at: float, login_sent: float | None = None) -> TokenRecord:
    exp = time.time() + 60
    payload = base64.urlsafe_b64encode(json.dumps({"exp": exp}).encode()).decode().rstrip("=")
    n = len(ledger.tokens)
    sent = minted_at - 0.01 if login_sent is None else login_sent
    return ledger.add_token(f"h.{payload}.s", f"sid{n}", f"uid{n}", sent, minted_at)


def probe(
    ledger: Ledger, t: TokenRecord, sent: float, status: int, code: str = "", subject: str = ""
) -> None:
    if status == 200 and not subject:
        subject = t.uid
    session = t.sid if status == 200 else ""
    ledger.probes.append(Probe(0, t.index, sent, sent + 0.002, status, subject, session, code))


def test_acceptance_is_a_violation_only_past_the_bound() -> None:
    ledger = Ledger()
    t = token(ledger, 1.0)
    t.revoke_sent, t.revoked_at = 9.99, 10.0
    probe(ledger, t, 9.0, 200)  # before the revocation
    probe(ledger, t, 10.5, 200)  # within max staleness: allowed
    probe(ledger, t, 11.2, 200)  # past it: the verifier should have known
    probe(ledger, t, 11.3, 401, "session_revoked")
    verdicts = judge(ledger, BOUND)
    assert verdicts.accepted_in_window == 1
    assert verdicts.accepted_after_revocation == 1
    assert verdicts.false_rejections == 0
    assert round(verdicts.max_accept_after_ack_s, 3) == 1.2


def test_last_acceptance_after_a_source_is_lost_counts_until_the_first_503() -> None:
    ledger = Ledger()
    t = token(ledger, 1.0)
    probe(ledger, t, 9.5, 200)  # before the loss: not counted
    probe(ledger, t, 10.4, 200)
    probe(ledger, t, 10.8, 200)  # the last acceptance on the old proof
    probe(ledger, t, 11.0, 503)
    probe(ledger, t, 13.0, 200)  # fresh again on the new primary: not counted
    assert round(last_accepted_after(ledger, 10.0, [0]), 3) == 0.8
    assert last_accepted_after(ledger, 10.0, [1]) == 0.0  # no probe of that verifier


def test_rejecting_a_live_token_is_false_unless_a_revocation_was_under_way() -> None:
    ledger = Ledger()
    live, pending = token(ledger, 1.0), token(ledger, 1.0)
    pending.revoke_sent, pending.unacknowledged = 5.0, True
    probe(ledger, live, 6.0, 401, "session_revoked")
    probe(ledger, pending, 4.0, 401, "session_revoked")  # before the request left: false
    probe(ledger, pending, 6.0, 401, "session_revoked")  # it may have been written
    probe(ledger, pending, 60.0, 200)  # never acknowledged: acceptance is no violation
    verdicts = judge(ledger, BOUND)
    assert verdicts.false_rejections == 2
    assert verdicts.false_rejection_codes == {"session_revoked": 2}
    assert verdicts.accepted_after_revocation == 0


def test_wrong_identity_other_statuses_and_silence() -> None:
    ledger = Ledger()
    t = token(ledger, 1.0)
    probe(ledger, t, 2.0, 200, subject="someone-else")
    probe(ledger, t, 2.1, 500, "internal_error")
    probe(ledger, t, 2.2, 0)
    probe(ledger, t, 2.3, 503, "verifier_stale")
    verdicts = judge(ledger, BOUND)
    assert (verdicts.wrong_identity, verdicts.bad_answers) == (1, 1)
    assert (verdicts.no_answer, verdicts.stale) == (1, 1)


def test_tokens_minted_before_a_data_loss_die_with_it() -> None:
    ledger = Ledger()
    old = token(ledger, 5.0)
    across = token(ledger, 9.2, login_sent=8.9)  # written before the kill or after: unknown
    new = token(ledger, 9.5)
    ledger.losses.append(Loss(killed_at=8.0, restored_at=9.0))
    probe(ledger, old, 8.5, 401, "key_revoked")  # after the kill: legitimate
    probe(ledger, old, 9.5, 200)  # within the bound after the restart
    probe(ledger, old, 10.5, 200)  # past it: a violation
    probe(ledger, across, 12.0, 200)
    probe(ledger, across, 12.0, 401, "key_revoked")
    probe(ledger, new, 9.6, 401, "unknown_key")  # new key not read yet: tolerated
    probe(ledger, new, 12.0, 401, "unknown_key")  # long after: false rejection
    verdicts = judge(ledger, BOUND)
    assert verdicts.accepted_in_window == 1
    assert verdicts.accepted_after_revocation == 1
    assert verdicts.uncertain == 2
    assert verdicts.unknown_new_key == 1
    assert verdicts.false_rejections == 1


def test_prometheus_histogram_and_gauge() -> None:
    text = """# HELP revocast_propagation_seconds Event written -> applied.
# TYPE revocast_propagation_seconds histogram
revocast_propagation_seconds_bucket{le="0.001"} 3.0
revocast_propagation_seconds_bucket{le="0.01"} 9.0
revocast_propagation_seconds_bucket{le="+Inf"} 10.0
revocast_propagation_seconds_count 10.0
revocast_propagation_seconds_sum 0.2
revocast_clock_offset_seconds -90.001
"""
    histogram = parse_histogram(text, "revocast_propagation_seconds")
    assert histogram is not None
    assert (histogram.count, histogram.quantile(0.5), histogram.quantile(0.95)) == (
        10,
        0.01,
        float("inf"),
    )
    earlier = parse_histogram(
        text.replace("9.0", "3.0").replace("10.0", "4.0"), "revocast_propagation_seconds"
    )
    assert earlier is not None
    assert (histogram - earlier).quantile(0.5) == 0.01
    assert parse_gauge(text, "revocast_clock_offset_seconds") == -90.001
    assert parse_histogram(text, "missing") is None
