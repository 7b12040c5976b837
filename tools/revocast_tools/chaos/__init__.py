"""Fault injection and the chaos harness behind ``revocast chaos``.

``revocast chaos list | all | SCENARIO... [--verifiers N] [--duration S] [--rate R]
[--json PATH] [--full]`` (also ``python -m revocast_tools.chaos``). Each scenario starts
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

from revocast_tools.chaos.cli import main

__all__ = ["main"]
