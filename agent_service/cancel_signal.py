"""Cross-replica cancel in milliseconds: a Redis pub/sub signal beside the database request.

A cancel for a run that executes on another replica is written to the shared database,
where that replica's lease beat finds it within a second (`leases`), and published on
CHANNEL, where every replica listens and stops the run if it executes it. Pub/sub is
fire-and-forget: a replica cut off from Redis when the signal went out never gets it, and
the database request still reaches it on its next lease beat. So the signal may fail
without consequence, and neither publishing nor listening ever fails a call or the
server: both log and carry on.

Without a Redis URL, `CancelSignal` itself tells no one, and cancels take the lease beat.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from typing import Any

from redis import exceptions as redis_errors
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

log = logging.getLogger(__name__)

# Next to the event log's keys (`glassbox:run:…`). A plain channel, not sharded pub/sub
# (SPUBLISH): in a Redis Cluster a PUBLISH reaches the subscribers of every node over the
# cluster bus, so a replica may subscribe through any node, and at the rate of cancels
# that broadcast costs nothing worth a cluster-aware client. Channels ignore the database
# number: deployments sharing a Redis server see each other's signals, harmlessly, since
# run ids are unique and a replica ignores runs it does not execute.
CHANNEL = "glassbox:cancel"
CLIENT_NAME = "glassbox-cancel-signal"  # how the connections show in CLIENT LIST
# A cancel answers within this even when Redis is unreachable; the request in the database
# stands regardless.
PUBLISH_WITHIN_S = 1.0
CONNECT_TIMEOUT_S = 5.0
# A quiet subscription is checked with a PING this often: a connection that died without
# a word (a failover, a network partition) would otherwise leave the replica deaf.
HEARTBEAT_S = 10.0
RECONNECT_MIN_S = 0.1
RECONNECT_MAX_S = 5.0

OnCancel = Callable[[str], None]


class CancelSignal:
    """Tells every replica that a run was asked to cancel. This one tells no one."""

    async def check(self) -> None:
        """Reach the signal's server: a setup mistake shows at start, not at a cancel."""

    async def publish(self, run_id: str) -> None:
        """Best effort; never raises."""

    async def listen(self, on_cancel: OnCancel) -> None:
        """Call `on_cancel(run_id)` for each signal until cancelled (here: nothing to hear)."""

    async def close(self) -> None:
        pass


class RedisCancelSignal(CancelSignal):
    """The signal as Redis pub/sub on `channel`; see the module docstring."""

    def __init__(self, url: str, *, channel: str = CHANNEL) -> None:
        self.channel = channel
        self.subscriptions = 0  # times `listen` subscribed: 1 plus its reconnections
        self._lost_at: float | None = None  # when `listen` lost Redis, until it is back
        common: dict[str, Any] = {
            "socket_connect_timeout": CONNECT_TIMEOUT_S,
            "client_name": CLIENT_NAME,
        }
        # One retry after a dropped connection (a Redis restart leaves dead ones in the
        # pool): a cancel published twice is harmless.
        self._publisher = Redis.from_url(
            url,
            retry=Retry(NoBackoff(), retries=1),
            retry_on_error=[redis_errors.ConnectionError, redis_errors.TimeoutError],
            socket_timeout=PUBLISH_WITHIN_S,
            **common,
        )
        # No retries under the subscription: `listen` reconnects itself, and says so. The
        # socket timeout bounds the handshake (a frozen server accepts but never answers);
        # reads of signals set their own.
        self._subscriber = Redis.from_url(
            url, retry=Retry(NoBackoff(), retries=0), socket_timeout=CONNECT_TIMEOUT_S, **common
        )

    async def check(self) -> None:
        await self._publisher.ping()

    async def close(self) -> None:
        await self._subscriber.aclose()
        await self._publisher.aclose()

    async def publish(self, run_id: str) -> None:
        try:
            async with asyncio.timeout(PUBLISH_WITHIN_S):
                await self._publisher.publish(self.channel, run_id)
        except (redis_errors.RedisError, OSError, TimeoutError) as exc:
            log.warning(
                "could not signal the cancel through Redis (%s); the replica executing "
                "the run finds the request in the database on its next lease beat",
                str(exc) or type(exc).__name__,
                extra={"run_id": run_id},
            )

    async def listen(self, on_cancel: OnCancel) -> None:
        """Subscribe, and subscribe again after any failure, with backoff, until cancelled."""
        delay = RECONNECT_MIN_S
        while True:
            subscriptions = self.subscriptions
            try:
                async with self._subscriber.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    await self._follow(pubsub, on_cancel)
            except (redis_errors.RedisError, OSError) as exc:
                self._lost(str(exc) or type(exc).__name__, delay)
            except Exception:  # not Redis going away but a bug: say so, and keep listening
                log.exception("cancel signal: listening failed; subscribing again")
            if self.subscriptions > subscriptions:  # Redis answered: back off from the start
                delay = RECONNECT_MIN_S
            # Jittered, so replicas do not reconnect in step after a Redis restart.
            await asyncio.sleep(random.uniform(delay / 2, delay))
            delay = min(delay * 2, RECONNECT_MAX_S)

    async def _follow(self, pubsub: PubSub, on_cancel: OnCancel) -> None:
        pinged = False
        while True:
            message = await pubsub.get_message(timeout=HEARTBEAT_S)
            if message is None:  # quiet for HEARTBEAT_S: is the connection still there?
                if pinged:
                    raise redis_errors.TimeoutError(f"no answer to PING within {HEARTBEAT_S:g} s")
                await pubsub.ping()
                pinged = True
            elif message["type"] == "message":
                on_cancel(bytes(message["data"]).decode(errors="replace"))
            elif message["type"] == "pong":
                pinged = False
            elif message["type"] == "subscribe":  # from here on, no signal passes us by
                self.subscriptions += 1
                if self._lost_at is not None:
                    down_s, self._lost_at = time.monotonic() - self._lost_at, None
                    log.info("cancel signal: subscribed to Redis again after %.1f s", down_s)

    def _lost(self, reason: str, delay: float) -> None:
        # A warning once per outage; the attempts of a long one at debug, not every 5 s.
        if self._lost_at is not None:
            log.debug("cancel signal: Redis still unreachable (%s)", reason)
            return
        self._lost_at = time.monotonic()
        log.warning(
            "cancel signal: lost Redis (%s); subscribing again in %.1f s, then backing off "
            "up to %g s apart; meanwhile cancels from other replicas arrive on the lease beat",
            reason,
            delay,
            RECONNECT_MAX_S,
        )
