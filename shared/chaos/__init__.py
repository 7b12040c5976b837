"""Fault injection and the chaos harness behind ``revocast chaos``.

``revocast chaos list | all | SCENARIO... [--verifiers N] [--duration S] [--rate R]
[--json PATH] [--full]`` (also ``python -m revocast.chaos``). Each scenario starts
private Redis nodes (one server, each verifier behind its own ``TcpProxy``; or a
Sentinel group or a Redis Cluster, ``nodes.py``), an issuer and N verifier
sidecars, keeps logging in, revoking and probing while ``scenarios.py`` (and
``failover.py``, ``replica_lag.py``) inject their faults, then checks the
invariants (``judge.py``: no acceptance after revocation, correct-or-stale
answers; ``recheck.py``: no revocation lost after recovery; bounded verifier
memory). ``harness.py`` runs one scenario, ``latency.py`` the propagation
measurements, ``report.py`` prints them.
"""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str]) -> int:
    """Run ``revocast chaos`` with ``argv`` (without the program name); the exit status."""
    # Imported here: the test suite imports the proxy alone, without the harness.
    from revocast.chaos.cli import main as run

    return run(argv)


__all__ = ["main"]
