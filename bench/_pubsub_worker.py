"""One subscriber process for ``bench.pubsub``; not run by hand.

Started as ``python -m bench._pubsub_worker URL CHANNEL STREAM``. On uvloop, with redis-py's
asyncio client (hiredis), it holds two connections: one ``SUBSCRIBE``d to CHANNEL, one
looping ``XREAD BLOCK 1000 COUNT 100`` on STREAM from the last id it read (as revocast's
follower does). Talks to the parent over stdin/stdout, one line per message:

- ``ready`` once subscribed and the first stream read was sent;
- ``recv <kind> <seq> <time.monotonic()>`` for each message received (kind ``pubsub`` or
  ``stream``), the clock read as soon as the client library handed the message over;
- ``ping`` -> ``pong <time.monotonic()>``; ``quit`` or end of input: exit.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any, cast

import uvloop
from redis.asyncio import Redis

BLOCK_MS = 1000


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def follow_pubsub(client: Redis, channel: str, subscribed: asyncio.Event) -> None:
    pubsub = client.pubsub()
    await pubsub.subscribe(channel)
    while True:
        message = await pubsub.get_message(timeout=None)
        if message is None:
            continue
        if message["type"] == "subscribe":
            subscribed.set()
            continue
        if message["type"] == "message":
            now = time.monotonic()
            seq = str(message["data"]).split(",", 1)[0]
            say(f"recv pubsub {seq} {now!r}")


async def follow_stream(client: Redis, stream: str, started: asyncio.Event) -> None:
    last_id = "0-0"
    while True:
        read = client.xread({stream: last_id}, count=100, block=BLOCK_MS)
        started.set()
        reply = cast(list[tuple[str, list[tuple[str, dict[str, str]]]]], await read)
        now = time.monotonic()
        for _name, entries in reply or []:
            for entry_id, fields in entries:
                last_id = entry_id
                say(f"recv stream {fields['seq']} {now!r}")


async def commands() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = (await reader.readline()).decode().strip()
        if line == "ping":
            say(f"pong {time.monotonic()!r}")
        elif line in ("quit", ""):
            return


async def main(url: str, channel: str, stream: str) -> None:
    subscriber: Redis = Redis.from_url(url, decode_responses=True)
    reader: Redis = Redis.from_url(url, decode_responses=True, socket_timeout=BLOCK_MS / 1000 + 5)
    subscribed, started = asyncio.Event(), asyncio.Event()
    _tasks: list[asyncio.Task[Any]] = [  # kept referenced while they run
        asyncio.create_task(follow_pubsub(subscriber, channel, subscribed)),
        asyncio.create_task(follow_stream(reader, stream, started)),
    ]
    await asyncio.wait_for(asyncio.gather(subscribed.wait(), started.wait()), 30)
    await asyncio.sleep(0.05)  # the first XREAD is on the wire by now
    say("ready")
    await commands()
    # Exit at once: cancelling tasks blocked in redis-py reads can hang (see docs/design.md).
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    uvloop.run(main(*sys.argv[1:4]))
