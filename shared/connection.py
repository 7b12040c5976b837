"""Redis clients configured the way revocast needs them."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff


def redis_client(url: str, *, socket_timeout_s: float = 5.0) -> Redis:
    """A decoding client with no hidden retries: callers own their backoff and deadlines."""
    return Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=socket_timeout_s,
        socket_connect_timeout=min(socket_timeout_s, 2.0),
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
    )
