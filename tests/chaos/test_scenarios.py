"""Every chaos scenario, short version, against real processes: the invariants must hold.

Each scenario starts its own Redis, issuer and verifier sidecars (never the
suite's shared server) and kills them afterwards; see ``revocast chaos list``.
Every scenario run is a slow test (multi-process, 5 to 25 s each; about three
minutes together): a plain ``pytest`` leaves them out, ``./scripts/test`` runs them.
"""

from __future__ import annotations

import os

import pytest

from revocast_tools.chaos.cli import scenarios
from revocast_tools.chaos.harness import Params, Spec, run_fault_scenario
from revocast_tools.chaos.report import text
from revocast_tools.chaos.scenarios import link_cut

SCENARIOS = sorted(scenarios())
FAILOVER_TIMELINE = ("failover_s", "first_login_s", "verifiers_ready_s", "rejoin_s")
# The scenarios on Sentinel and Cluster, and the timeline each must have measured.
ON_TOPOLOGIES = {
    "sentinel-failover": FAILOVER_TIMELINE,
    "cluster-failover": FAILOVER_TIMELINE,
    "replica-lag": ("readers_stale_after_break_s", "readers_ready_after_heal_s"),
}


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=pytest.mark.timeout(180)) if name in ON_TOPOLOGIES else name
        for name in SCENARIOS
    ],
)
async def test_scenario_keeps_the_invariants(name: str) -> None:
    _, run = scenarios()[name]
    result = await run(Params())
    report = text(result)
    assert result.passed, report
    assert result.checks, report
    assert not any(f.recovery_s is None for f in result.faults), report
    for count in ON_TOPOLOGIES.get(name, ()):
        assert result.counts.get(count, -1) >= 0, f"{count} not measured\n{report}"


@pytest.mark.slow
async def test_the_harness_catches_verifiers_that_fail_open() -> None:
    """Control run: sidecars that keep accepting while cut off must break invariant 1."""
    spec = Spec(
        "fail-open-control",
        "every link cut, verifiers with REVOCAST_FAIL_MODE=open",
        link_cut,
        cycles=(1, 1),
        all_first=True,
        verifier_env=({"REVOCAST_FAIL_MODE": "open"},),
    )
    result = await run_fault_scenario(spec, Params(duration_s=3.0))
    checks = {check.name: check for check in result.checks}
    assert result.error is None, text(result)
    assert checks["accepted_after_revocation"].value > 0, text(result)
    assert not result.passed


def test_every_documented_scenario_is_registered() -> None:
    assert set(SCENARIOS) == {
        "redis-kill-aof", "redis-kill-noaof", "redis-pause", "link-cut", "link-delay",
        "link-blackhole", "stream-trim", "verifier-kill", "issuer-kill", "burst",
        "clock-skew", "sentinel-failover", "cluster-failover", "replica-lag", "latency",
    }  # fmt: skip


def test_nothing_is_left_running() -> None:
    """No Redis or revocast service started by the scenarios above outlives them."""
    leftovers = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as status:
                parent = next((line.split()[1] for line in status if line.startswith("PPid:")), "")
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                command = cmdline.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if parent == str(os.getpid()) and (
            "revocast-chaos-" in command or "-m revocast" in command
        ):
            leftovers.append(command)
    assert leftovers == []
