"""Prometheus view of a Verifier, read from its plain counters at scrape time.

The hot path only bumps ints; this collector turns them into metric families
when ``/metrics`` is scraped, so metrics cost nothing per verify call beyond that.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from revocast.verifier.follower import PROPAGATION_BUCKETS_S
from revocast.verifier.verifier import Verifier


class VerifierCollector(Collector):
    """Verify outcomes, freshness, stream progress, cache sizes and propagation delays."""

    def __init__(self, verifier: Verifier) -> None:
        self.verifier = verifier

    def collect(self) -> Iterator[Metric]:
        verifier, follower, cache = self.verifier, self.verifier.follower, self.verifier.cache

        outcomes = CounterMetricFamily(
            "revocast_verify", "Verify calls by outcome and reason.", labels=["outcome", "reason"]
        )
        outcomes.add_metric(["accepted", ""], verifier.accepted)
        outcomes.add_metric(["stale", "verifier_stale"], verifier.stale)
        for reason, count in sorted(verifier.rejected.items()):
            outcomes.add_metric(["rejected", reason], count)
        yield outcomes
        if verifier.lists is not None:  # REVOCAST_STATUS_LIST=fallback
            yield CounterMetricFamily(
                "revocast_status_list_answers",
                "Tokens accepted from the issuer's status lists while the streams were stale.",
                value=verifier.by_list,
            )
            yield CounterMetricFamily(
                "revocast_status_list_refused",
                "Status lists or JWKS fetched but not taken (unreachable, or not the issuer's).",
                value=verifier.lists.refused,
            )

        staleness = verifier.staleness_s
        yield GaugeMetricFamily(
            "revocast_verifier_staleness_seconds",
            "Seconds since the last stream read that proved nothing was missed (-1: never).",
            value=staleness if math.isfinite(staleness) else -1.0,
        )
        yield GaugeMetricFamily(
            "revocast_verifier_ready", "1 when fresh and serving.", value=int(verifier.ready)
        )
        yield GaugeMetricFamily(
            "revocast_stream_lag_entries",
            "Stream entries written but not yet applied, at the last poll.",
            value=follower.lag_entries,
        )
        yield GaugeMetricFamily(
            "revocast_replica_lag_seconds",
            "Reading replicas: how far the least current one is behind its primary's heartbeat.",
            value=follower.replica_lag_ms / 1000,
        )
        yield GaugeMetricFamily(
            "revocast_streams_followed",
            "Streams followed: the global one and one per partition.",
            value=len(follower.streams),
        )
        yield GaugeMetricFamily(
            "revocast_clock_offset_seconds",
            "Redis time minus this host's time, as measured on the last poll.",
            value=follower.clock_offset_s,
        )

        sizes = GaugeMetricFamily(
            "revocast_cache_entries", "Entries in the revocation cache.", labels=["kind"]
        )
        host = verifier.host
        if host is None:
            revocations = [
                ("sessions", len(cache.sessions)),
                ("users", len(cache.users)),
                ("roles_changed", len(cache.roles_changed)),
            ]
        else:  # the revocations are in the host's table, the same in every worker
            slots, entries = host.view.counts()
            revocations = [("host_table", entries)]
            yield GaugeMetricFamily(
                "revocast_host_table_slots",
                "Slots of the host's shared revocation table (it grows past 75 % full).",
                value=slots,
            )
            yield GaugeMetricFamily(
                "revocast_host_follower",
                "1 in the process of the host that follows the streams and writes its table.",
                value=int(host.leading),
            )
        for kind, size in [
            *revocations,
            ("revoked_keys", len(cache.revoked_keys)),
            ("trusted_keys", len(cache.keys)),
        ]:
            sizes.add_metric([kind], size)
        yield sizes

        yield CounterMetricFamily(
            "revocast_snapshots",
            "Snapshots taken (start, trim, data loss).",
            value=follower.snapshots,
        )
        yield CounterMetricFamily(
            "revocast_stream_read_errors", "Failed stream reads.", value=follower.read_errors
        )
        applied = CounterMetricFamily(
            "revocast_events_applied", "Stream events applied, by type.", labels=["type"]
        )
        for kind, count in sorted(follower.events_by_type.items()):
            applied.add_metric([kind], count)
        yield applied
        by_actor = CounterMetricFamily(
            "revocast_revocations_applied",
            "Revocation events applied, by who they came from (the event's actor_kind).",
            labels=["actor_kind"],
        )
        for actor_kind, count in sorted(follower.revocations_by_actor.items()):
            by_actor.add_metric([actor_kind], count)
        yield by_actor

        cumulative, buckets = 0, []
        for bound, count in zip(PROPAGATION_BUCKETS_S, follower.propagation_counts, strict=True):
            cumulative += count
            buckets.append(("+Inf" if math.isinf(bound) else repr(bound), cumulative))
        yield HistogramMetricFamily(
            "revocast_propagation_seconds",
            "Event written to Redis -> applied by this verifier (Redis time on both ends).",
            buckets=buckets,
            sum_value=follower.propagation_sum_s,
        )
        yield GaugeMetricFamily(
            "revocast_propagation_max_seconds",
            "Slowest propagation seen.",
            value=follower.propagation_max_s,
        )
