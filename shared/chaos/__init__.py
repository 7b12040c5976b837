"""Fault injection and the chaos harness behind ``revocast chaos``.

``revocast chaos list | all | SCENARIO... [--verifiers N] [--duration S] [--rate R]
[--json PATH] [--full]`` (also ``python -m revocast.chaos``). Each scenario starts
a private Redis, an issuer and N verifier sidecars (each behind its own
``TcpProxy``), keeps logging in, revoking and probing while ``scenarios.py``
injects its faults, then checks the invariants (``judge.py``: no acceptance
after revocation, correct-or-stale answers; ``recheck.py``: no revocation lost
after recovery; bounded verifier memory). ``harness.py`` runs one scenario,
``latency.py`` the propagation measurements, ``report.py`` prints them.
"""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str]) -> int:
    """Run ``revocast chaos`` with ``argv`` (without the program name); the exit status."""
    # Imported here: the test suite imports the proxy alone, without the harness.
    from revocast.chaos.cli import main as run

    return run(argv)


__all__ = ["main"]
