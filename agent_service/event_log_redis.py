"""The scale-out event log: one Redis Stream per run, shared by every agent replica.

Two keys per run, in the run id's hash slot so a Redis Cluster keeps them together:

    {prefix}{<run_id>}:events   a stream; entry `<seq>-0`, field `e` = the RunEvent bytes
    {prefix}{<run_id>}:meta     a hash: epoch, last seq, ended, recent append ids

- seq: one Lua script reads `last`, adds each event at the next id and stores the new
  `last`, atomically, so writers on any replica never share a seq. A cursor's seq is a
  stream id, so replay is `XRANGE (seq` and the live tail `XREAD seq`.
- Retried appends: every append carries an id (a fresh one per call unless the caller
  gives its own). The script remembers a run's latest ids and answers a repeat with the
  seqs of the first attempt, writing nothing. redis-py retries a command after a
  connection error or timeout, when the first attempt may have been applied: this is
  what makes that retry safe.
- epoch: random, made with the hash. If the hash vanished (expired, flushed, a Redis
  without persistence restarted), the next append starts a new log, a new epoch, at
  seq 1: no cursor of the old epoch is recovered from it, and readers of the old epoch
  fail (UNAVAILABLE) so their clients re-attach and learn it.
- Retention: `MAXLEN ~ max_events_per_run` on each add (approximate: Redis keeps at
  least that many and trims whole nodes; attach reads the first seq still held, so
  replay stays exact). Both keys expire `retention_s` after the run-ended event, and
  `running_ttl_s` after the latest append while the run goes on, so the log of a run
  whose process died does not stay forever.
- Connections: appends, attach and replay share `command_connections`. A reader at
  the live tail holds one connection of a second pool while blocked in XREAD, for at
  most `check_s`, after which it checks its log still exists. `max_readers` caps that
  pool: past it, readers take turns (events reach them up to `check_s` late), and one
  that waits `reader_wait_s` for a connection fails with UNAVAILABLE. Budget Redis'
  `maxclients` (10 000 by default) for replicas x (max_readers + command_connections).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Sequence
from typing import Any

from redis import exceptions as redis_errors
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff

from agent_service.event_log import (
    REMEMBERED_APPENDS,
    Attachment,
    Cursor,
    EventLog,
    RunEvent,
    is_terminal,
    new_epoch,
    no_events,
)
from agent_service.recovery import Held, check_gap, finished, plan
from glassbox.errors import UnavailableError

log = logging.getLogger(__name__)

ScriptArg = bytes | str | int | float

CONNECT_TIMEOUT_S = 5.0
COMMAND_TIMEOUT_S = 10.0
PAGE = 1000  # entries per XRANGE/XREAD: a replay comes in batches of this, not at once
_UNAVAILABLE = (redis_errors.ConnectionError, redis_errors.TimeoutError, redis_errors.ReadOnlyError)


def _tag(field: str, wire_type: int) -> str:
    number = RunEvent.DESCRIPTOR.fields_by_name[field].number
    assert number < 16, "a one-byte protobuf tag"
    return f"\\{number << 3 | wire_type}"


# The script stamps epoch and seq by appending their fields to the serialized event: a
# protobuf parser merges concatenated messages, so the stored bytes are the whole event.
_APPEND = """
local meta, stream = KEYS[1], KEYS[2]
local append_id, maxlen = ARGV[2], ARGV[3]
local epoch = redis.call('HGET', meta, 'epoch')
if not epoch then
  epoch = ARGV[1]
  redis.call('DEL', stream)
  redis.call('HSET', meta, 'epoch', epoch, 'last', 0)
end
local done = redis.call('HGET', meta, 'a:' .. append_id)
if done then
  return {epoch, tonumber(done), 1}
end
local function varint(n)
  local out = {}
  while n >= 128 do
    out[#out + 1] = string.char(n % 128 + 128)
    n = math.floor(n / 128)
  end
  out[#out + 1] = string.char(n)
  return table.concat(out)
end
local stamp = 'EPOCH_TAG' .. varint(#epoch) .. epoch .. 'SEQ_TAG'
local last = tonumber(redis.call('HGET', meta, 'last'))
local first = last + 1
for i = 7, #ARGV do
  last = last + 1
  local id = string.format('%d-0', last)
  redis.call('XADD', stream, 'MAXLEN', '~', maxlen, id, 'e', ARGV[i] .. stamp .. varint(last))
end
local recent = {}
for id in string.gmatch(redis.call('HGET', meta, 'recent') or '', '%S+') do
  recent[#recent + 1] = id
end
recent[#recent + 1] = append_id
while #recent > REMEMBERED do
  redis.call('HDEL', meta, 'a:' .. table.remove(recent, 1))
end
redis.call('HSET', meta, 'last', last, 'recent', table.concat(recent, ' '))
redis.call('HSET', meta, 'a:' .. append_id, first)
if ARGV[6] == '1' then
  redis.call('HSET', meta, 'ended', 1)
end
local ttl = ARGV[4]
if redis.call('HEXISTS', meta, 'ended') == 1 then
  ttl = ARGV[5]
end
redis.call('PEXPIRE', meta, ttl)
redis.call('PEXPIRE', stream, ttl)
return {epoch, first, 0}
""".replace("EPOCH_TAG", _tag("epoch", 2)).replace("SEQ_TAG", _tag("seq", 0))
_APPEND = _APPEND.replace("REMEMBERED", str(REMEMBERED_APPENDS))

_CREATE = """
if redis.call('HSETNX', KEYS[1], 'epoch', ARGV[1]) == 1 then
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'last', 0)
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
"""

# One consistent view for attach: epoch, last seq, first seq held, ended.
_STATE = """
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  return false
end
local last = tonumber(redis.call('HGET', KEYS[1], 'last'))
local first = last + 1
local head = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
if #head > 0 then
  first = tonumber(string.match(head[1][1], '^(%d+)'))
end
return {epoch, last, first, redis.call('HEXISTS', KEYS[1], 'ended')}
"""


class RedisEventLog(EventLog):
    """Redis Streams behind the EventLog contract; see the module docstring."""

    def __init__(
        self,
        url: str,
        *,
        key_prefix: str = "glassbox:run:",
        max_events_per_run: int = 100_000,
        retention_s: float = 3600.0,
        running_ttl_s: float = 86_400.0,
        max_readers: int = 256,
        command_connections: int = 32,
        check_s: float = 5.0,
        reader_wait_s: float = 30.0,
    ) -> None:
        self.key_prefix = key_prefix
        self.max_events_per_run = max_events_per_run
        self.retention_ms = max(int(retention_s * 1000), 1)
        self.running_ttl_ms = max(int(running_ttl_s * 1000), 1)
        self.max_readers = max_readers
        self.check_s = check_s
        self.tailing = 0  # readers blocked in XREAD now, each on a connection of its own
        # Retry after a dropped connection or a timeout; appends are idempotent (above).
        common: dict[str, Any] = {
            "socket_connect_timeout": CONNECT_TIMEOUT_S,
            "retry": Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), retries=3),
            "retry_on_error": [redis_errors.ConnectionError, redis_errors.TimeoutError],
        }
        self._commands = Redis.from_pool(
            BlockingConnectionPool.from_url(
                url,
                max_connections=command_connections,
                timeout=COMMAND_TIMEOUT_S,
                socket_timeout=COMMAND_TIMEOUT_S,
                **common,
            )
        )
        self._readers = Redis.from_pool(
            BlockingConnectionPool.from_url(
                url,
                max_connections=max_readers,
                timeout=reader_wait_s,
                socket_timeout=check_s + COMMAND_TIMEOUT_S,  # longer than a blocked XREAD
                **common,
            )
        )
        self._append = self._commands.register_script(_APPEND)
        self._create = self._commands.register_script(_CREATE)
        self._state = self._commands.register_script(_STATE)

    def keys(self, run_id: str) -> tuple[str, str]:
        """The run's (meta hash, stream) keys."""
        base = f"{self.key_prefix}{{{run_id}}}"
        return f"{base}:meta", f"{base}:events"

    async def check(self) -> None:
        """Reach Redis and load the scripts: a setup mistake shows at start, not mid-run."""
        await self._commands.ping()
        for script in (self._append, self._create, self._state):
            await self._commands.script_load(script.script)

    async def close(self) -> None:
        await self._readers.aclose()
        await self._commands.aclose()

    async def create(self, run_id: str) -> None:
        args: list[ScriptArg] = [new_epoch(), self.running_ttl_ms]
        await self._call(self._create(keys=self.keys(run_id), args=args))

    async def append(self, run_id: str, events: Sequence[RunEvent], *, append_id: str = "") -> None:
        if not events:
            return
        append_id = append_id or uuid.uuid4().hex
        if not append_id.isprintable() or " " in append_id:
            raise ValueError(f"append id {append_id!r} must be printable, without spaces")
        payloads = []
        for event in events:
            event.ClearField("epoch")  # the script stamps both
            event.ClearField("seq")
            payloads.append(event.SerializeToString())
        ends = any(is_terminal(event) for event in events)
        args: list[ScriptArg] = [new_epoch(), append_id, self.max_events_per_run]
        args += [self.running_ttl_ms]
        args += [self.retention_ms, int(ends), *payloads]
        epoch, first, _repeat = await self._call(self._append(keys=self.keys(run_id), args=args))
        for i, event in enumerate(events):
            event.epoch, event.seq = epoch.decode(), first + i

    async def last_seq(self, run_id: str) -> tuple[str, int]:
        meta, _ = self.keys(run_id)
        epoch, last = await self._call(self._commands.hmget(meta, ["epoch", "last"]))
        return (epoch or b"").decode(), int(last or 0)

    async def attach(self, run_id: str, cursor: Cursor) -> Attachment:
        held = await self._read_state(run_id)  # None: expired, lost, or never created here
        answer = plan(cursor, held)
        if held is None or answer.follow_after is None:
            return Attachment(
                answer.recovered,
                held.epoch if held else "",
                held.first_seq if held else 0,
                no_events(),
            )
        batches = self._follow(run_id, held, answer.follow_after)
        return Attachment(answer.recovered, held.epoch, held.first_seq, batches)

    async def _read_state(self, run_id: str) -> Held | None:
        state = await self._call(self._state(keys=self.keys(run_id)))
        if state is None:
            return None
        epoch, last, first, ended = state
        return Held(epoch.decode(), int(first), int(last), bool(ended))

    async def _follow(
        self, run_id: str, held: Held, after_seq: int
    ) -> AsyncIterator[list[RunEvent]]:
        """Replay with XRANGE until a short page, then tail with XREAD from the last id
        replayed, so the hand-over has no gap and no repeat."""
        _, stream = self.keys(run_id)
        position, replaying = after_seq, True
        while True:
            if replaying:
                entries = await self._call(
                    self._commands.xrange(stream, min=f"({position}-0", max="+", count=PAGE)
                )
                replaying = len(entries) == PAGE
            else:
                entries = await self._tail(stream, position)
                if not entries:  # quiet for check_s: is the log still the one we follow?
                    state = await self._read_state(run_id)
                    if state is None or state.epoch != held.epoch:
                        raise _lost(run_id)
                    held = state
            if entries:
                batch = [RunEvent.FromString(fields[b"e"]) for _id, fields in entries]
                if batch[0].epoch != held.epoch:
                    raise _lost(run_id)
                check_gap(position, batch[0].seq)
                position = batch[-1].seq
                yield batch
                if is_terminal(batch[-1]):
                    return
            elif finished(position, held):
                return  # the cursor was at the end of a finished run already

    async def _tail(self, stream: str, position: int) -> list[Any]:
        self.tailing += 1
        try:
            reply = await self._call(
                self._readers.xread(
                    {stream: f"{position}-0"}, count=PAGE, block=int(self.check_s * 1000)
                )
            )
        finally:
            self.tailing -= 1
        return list(reply[0][1]) if reply else []

    async def _call(self, command: Awaitable[Any]) -> Any:
        """Await a Redis reply (untyped: scripts and RESP2/3 answer differently)."""
        task = asyncio.current_task()
        cancels = task.cancelling() if task is not None else 0
        try:
            reply = await command
        except redis_errors.ConnectionError as exc:
            if "No connection available" in str(exc):
                raise UnavailableError(
                    "every event-log connection of this replica is in use "
                    f"({self.max_readers} readers at most); retry, or reach another replica"
                ) from exc
            log.warning("event log unreachable: %s", exc)
            raise UnavailableError("the event log (Redis) is unreachable; retry") from exc
        except _UNAVAILABLE as exc:
            log.warning("event log unavailable: %s", exc)
            raise UnavailableError("the event log (Redis) is unavailable; retry") from exc
        if task is not None and task.cancelling() > cancels:
            # A cancel redis-py swallowed: on Python 3.11 it sends each command under
            # asyncio.wait_for, which returns a send that finished as the cancel came
            # instead of raising it. A cancelled reader would go on tailing for ever,
            # holding a reader connection; a cancelled run would go on running.
            raise asyncio.CancelledError
        return reply


def _lost(run_id: str) -> UnavailableError:
    return UnavailableError(
        f"the event log of run {run_id!r} was lost (expired, or Redis lost its data); "
        "re-attach: the answer says whether the events can still be replayed"
    )
