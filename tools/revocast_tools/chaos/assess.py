"""Turn a run's verdicts, final check and measurements into PASS/FAIL checks and counts."""

from __future__ import annotations

from revocast_tools.chaos.judge import Verdicts
from revocast_tools.chaos.ledger import Ledger
from revocast_tools.chaos.recheck import Recheck
from revocast_tools.chaos.results import Check, ScenarioResult
from revocast_tools.chaos.workload import Workload

RSS_LIMIT_MIB = 300.0


def assess(
    result: ScenarioResult,
    ledger: Ledger,
    verdicts: Verdicts,
    final: Recheck,
    workload: Workload,
) -> None:
    codes = ", ".join(f"{code}: {n}" for code, n in verdicts.false_rejection_codes.most_common())
    unrecovered = sum(1 for f in result.faults if f.recovery_s is None)
    result.checks += [
        Check("accepted_after_revocation", verdicts.accepted_after_revocation, 0),
        Check("false_rejections", verdicts.false_rejections, 0, codes),
        Check("wrong_answers", verdicts.wrong_identity + verdicts.bad_answers, 0,
              "200 naming another session, or a status other than 200/401/503"),
        Check("lost_revocations", final.lost + final.unverified, 0,
              f"{final.lost} accepted, {final.unverified} unverified of "
              f"{final.revoked_checked} after recovery"),
        Check("verifier_rss_max_mib", round(workload.memory.max_mib, 1), RSS_LIMIT_MIB),
        Check("faults_not_recovered", unrecovered, 0),
        Check("revocations_acked", ledger.revocations_acked, 1, "a run that revoked nothing "
              "proves nothing", at_least=True),
    ]  # fmt: skip
    recoveries = [f.recovery_s for f in result.faults if f.recovery_s is not None]
    result.counts |= {
        "probes": verdicts.probes,
        "accepted": verdicts.accepted,
        "rejected": verdicts.rejected,
        "stale_answers": verdicts.stale,
        "no_answer": verdicts.no_answer,
        "accepted_in_window": verdicts.accepted_in_window,
        "max_accept_after_ack_s": round(verdicts.max_accept_after_ack_s, 3),
        "expired": verdicts.expired,
        "unknown_new_key": verdicts.unknown_new_key,
        "uncertain": verdicts.uncertain,
        "revocations_acked": ledger.revocations_acked,
        "revocations_unacked": ledger.revocations_unacked,
        "revocations_refused": ledger.revocations_refused,
        "revocations_skipped": workload.skipped,
        "logins": ledger.logins,
        "login_failures": ledger.login_failures,
        "final_checks": final.revoked_checked + final.live_checked,
        "stale_time_max_s": round(max(workload.stale_s, default=0.0), 2),
        "stale_time_total_s": round(sum(workload.stale_s), 2),
        "recovery_max_s": round(max(recoveries, default=0.0), 3),
        "rss_max_mib": round(workload.memory.max_mib, 1),
        "rss_growth_mib": round(workload.memory.growth_mib, 1),
        "requests": verdicts.probes
        + ledger.readiness_requests
        + ledger.revocations_sent
        + ledger.logins
        + ledger.login_failures,
    }
    if ledger.login_errors:
        reasons = ", ".join(f"{r}: {n}" for r, n in ledger.login_errors.most_common())
        result.notes.append(f"failed logins ({reasons})")
    result.examples += verdicts.examples + final.examples
