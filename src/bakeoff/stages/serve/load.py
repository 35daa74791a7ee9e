"""bakeoff's load generator: open loop (constant or Poisson arrivals, latency from each request's intended
send time, so coordinated omission cannot hide queueing) and a closed-loop concurrency sweep, over a small
HTTP/1.1 keep-alive client on raw asyncio protocols (the fastest client this 2-core machine allowed:
aiohttp's client costs more per request) and over gRPC codecs' own aio clients.

Every request of a run is pre-encoded once; the generator checks only the status (the stage checks the
answers' values separately), so its own cost per request stays a few tens of microseconds. `ceiling()`
measures how fast it can drive bakeoff's no-op server, and the stage never reports a server as slower than
that ceiling.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import math
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from bakeoff.stages.serve.protocols import Request


@dataclass(frozen=True)
class HttpTarget:
    """One pre-encoded HTTP request against host:port."""

    host: str
    port: int
    raw: bytes

    @classmethod
    def of(cls, address: str, request: Request) -> HttpTarget:
        parts = urlsplit(address)
        host = parts.hostname or "127.0.0.1"
        port = parts.port or 80
        headers = {"Host": f"{host}:{port}", "Content-Length": str(len(request.body)), **request.headers}
        head = f"{request.method} {request.path} HTTP/1.1\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in headers.items()
        )
        return cls(host, port, head.encode("latin-1") + b"\r\n" + request.body)


@dataclass
class LoadResult:
    """One load run: what was offered and what came back. Latencies are seconds of answered requests
    (2xx), from intended send time in open loop and from actual send time in closed loop."""

    mode: str  # 'open' | 'closed'
    duration_s: float
    offered_rps: float | None = None
    arrival: str | None = None
    concurrency: int | None = None
    sent: int = 0
    ok: int = 0
    timeouts: int = 0
    errors: dict[str, int] = field(default_factory=dict)  # status (or 'connection') -> count
    latency_s: list[float] = field(default_factory=list)
    throughput_rps: list[float] = field(default_factory=list)  # answered per window
    send_lag_s: float = 0.0  # p99 of how late the generator sent behind schedule (its own saturation)

    @property
    def achieved_rps(self) -> float:
        return self.ok / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def failed(self) -> int:
        return self.timeouts + sum(self.errors.values())

    def percentile(self, q: float) -> float:
        if not self.latency_s:
            return math.inf
        return float(np.percentile(np.asarray(self.latency_s), q))

    def summary(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "offered_rps": self.offered_rps,
            "arrival": self.arrival,
            "concurrency": self.concurrency,
            "duration_s": round(self.duration_s, 3),
            "sent": self.sent,
            "ok": self.ok,
            "timeouts": self.timeouts,
            "errors": dict(self.errors),
            "achieved_rps": round(self.achieved_rps, 1),
            "p50_s": self.percentile(50) if self.latency_s else None,
            "p90_s": self.percentile(90) if self.latency_s else None,
            "p99_s": self.percentile(99) if self.latency_s else None,
            "p999_s": self.percentile(99.9) if self.latency_s else None,
            "send_lag_p99_s": self.send_lag_s,
        }


class _Conn(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection that carries one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.closed = False
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection closed by the server"))

    def data_received(self, data: bytes) -> None:
        self.buf += data
        self._parse()

    def _parse(self) -> None:
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buf[:end]).lower()
        status = int(head[9:12])
        start = end + 4
        pos = head.find(b"\r\ncontent-length:")
        if pos >= 0:
            stop = head.find(b"\r\n", pos + 2)
            length = int(head[pos + 17 : stop if stop >= 0 else len(head)])
            if len(self.buf) - start < length:
                return
            del self.buf[: start + length]
        elif b"transfer-encoding: chunked" in head:
            consumed = _chunked_end(self.buf, start)
            if consumed < 0:
                return
            del self.buf[:consumed]
        elif status in (204, 304) or 100 <= status < 200:
            del self.buf[:start]
        else:
            return  # body runs to the connection's end
        if b"\r\nconnection: close" in head and self.transport is not None:
            self.transport.close()
            self.closed = True
        self._done(status)

    def _done(self, status: int) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(status)

    def _timeout(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(TimeoutError())
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def send(self, raw: bytes, timeout_s: float) -> asyncio.Future[int]:
        loop = asyncio.get_running_loop()
        self.waiter = loop.create_future()
        self._timer = loop.call_later(timeout_s, self._timeout)
        assert self.transport is not None
        self.transport.write(raw)
        return self.waiter


def _chunked_end(buf: bytearray, start: int) -> int:
    """The index just past a complete chunked body starting at `start`, or -1 while incomplete."""
    pos = start
    while True:
        line_end = buf.find(b"\r\n", pos)
        if line_end < 0:
            return -1
        size = int(bytes(buf[pos:line_end]).split(b";")[0], 16)
        pos = line_end + 2
        if size == 0:
            trailer = buf.find(b"\r\n", pos)
            return -1 if trailer < 0 else trailer + 2
        if len(buf) < pos + size + 2:
            return -1
        pos += size + 2


class _HttpDriver:
    """A pool of keep-alive connections to one target; `call()` sends the request once."""

    def __init__(self, target: HttpTarget, max_connections: int, timeout_s: float) -> None:
        self.target = target
        self.timeout_s = timeout_s
        self.idle: list[_Conn] = []
        self.open = 0
        self.max_connections = max_connections
        self.freed: asyncio.Queue[_Conn | None] = asyncio.Queue()

    async def _connect(self) -> _Conn:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(_Conn, self.target.host, self.target.port)
        return conn

    async def prewarm(self, n: int) -> None:
        n = min(n, self.max_connections)
        conns = await asyncio.gather(*(self._connect() for _ in range(n)), return_exceptions=True)
        for c in conns:
            if isinstance(c, _Conn):
                self.idle.append(c)
                self.open += 1

    async def _acquire(self) -> _Conn:
        while self.idle:
            conn = self.idle.pop()
            if not conn.closed:
                return conn
            self.open -= 1
        if self.open < self.max_connections:
            self.open += 1
            try:
                return await self._connect()
            except OSError:
                self.open -= 1
                raise
        while True:
            got = await self.freed.get()
            if got is not None and not got.closed:
                return got
            if got is not None:
                self.open -= 1
            if self.open < self.max_connections:
                self.open += 1
                try:
                    return await self._connect()
                except OSError:
                    self.open -= 1
                    raise

    def _release(self, conn: _Conn) -> None:
        if self.freed._getters:  # type: ignore[attr-defined]  # someone waits: hand it over directly
            self.freed.put_nowait(conn)
        elif conn.closed:
            self.open -= 1
        else:
            self.idle.append(conn)

    async def call(self) -> int | str:
        """The HTTP status, or 'timeout' / 'connection'."""
        try:
            conn = await self._acquire()
        except OSError:
            return "connection"
        try:
            return await conn.send(self.target.raw, self.timeout_s)
        except TimeoutError:
            return "timeout"
        except ConnectionError:
            return "connection"
        finally:
            self._release(conn)

    def close(self) -> None:
        for conn in self.idle:
            if conn.transport is not None:
                conn.transport.close()
        self.idle.clear()


class _GrpcDriver:
    def __init__(self, client: Any, inputs: dict[str, np.ndarray]) -> None:
        self.client = client
        self.inputs = inputs

    async def prewarm(self, n: int) -> None:
        with contextlib.suppress(Exception):
            await self.client.infer(self.inputs)

    async def call(self) -> int | str:
        from bakeoff.stages.serve.protocols import CodecError

        try:
            await self.client.infer(self.inputs)
            return 200
        except CodecError as exc:
            return "timeout" if exc.status == "DEADLINE_EXCEEDED" else str(exc.status)
        except Exception:
            return "connection"

    def close(self) -> None:
        pass


Driver = _HttpDriver | _GrpcDriver


def _windows(done_at: list[float], start: float, duration: float, n_windows: int) -> list[float]:
    width = duration / n_windows
    counts = [0] * n_windows
    for t in done_at:
        i = int((t - start) / width)
        if 0 <= i < n_windows:
            counts[i] += 1
    return [c / width for c in counts]


def _count(result: LoadResult, status: int | str, latency: float, done_at: list[float], now: float) -> None:
    if isinstance(status, int) and 200 <= status < 300:
        result.ok += 1
        result.latency_s.append(latency)
        done_at.append(now)
    elif status == "timeout":
        result.timeouts += 1
    else:
        key = str(status)
        result.errors[key] = result.errors.get(key, 0) + 1


def arrival_times(rate: float, duration: float, arrival: str, seed: int = 0) -> np.ndarray:
    """Intended send times (seconds from start) of an open-loop run."""
    n = max(1, int(rate * duration))
    if arrival == "constant":
        return np.arange(n) / rate
    if arrival == "poisson":
        gaps = np.random.default_rng(seed).exponential(1.0 / rate, size=n)
        times = np.cumsum(gaps) - gaps[0]
        return times[times < duration]
    raise ValueError(f"arrival must be 'constant' or 'poisson', got {arrival!r}")


async def _open_loop(
    driver: Driver, rate: float, duration: float, arrival: str, timeout_s: float, seed: int, windows: int
) -> LoadResult:
    loop = asyncio.get_running_loop()
    result = LoadResult("open", duration, offered_rps=rate, arrival=arrival)
    times = arrival_times(rate, duration, arrival, seed)
    done_at: list[float] = []
    lags: list[float] = []
    pending: set[asyncio.Task[None]] = set()

    async def one(intended: float) -> None:
        status = await driver.call()
        now = loop.time()
        _count(result, status, now - intended, done_at, now)

    start = loop.time() + 0.02
    i = 0
    n = len(times)
    while i < n:
        now = loop.time()
        due = start + times[i]
        if due > now:
            await asyncio.sleep(due - now)
            now = loop.time()
        while i < n and start + times[i] <= now:
            intended = start + float(times[i])
            lags.append(now - intended)
            task = loop.create_task(one(intended))
            pending.add(task)
            task.add_done_callback(pending.discard)
            i += 1
    result.sent = n
    if pending:
        await asyncio.wait(set(pending), timeout=timeout_s + 1.0)
    for task in list(pending):
        task.cancel()
    result.send_lag_s = float(np.percentile(lags, 99)) if lags else 0.0
    # Answers that came after the schedule ended still took time: the rate is over the whole span.
    result.duration_s = max(duration, (max(done_at) - start) if done_at else 0.0)
    result.throughput_rps = _windows(done_at, start, duration, windows)
    return result


async def _closed_loop(driver: Driver, concurrency: int, duration: float, windows: int) -> LoadResult:
    loop = asyncio.get_running_loop()
    result = LoadResult("closed", duration, concurrency=concurrency)
    done_at: list[float] = []
    start = loop.time()
    stop = start + duration

    async def worker() -> None:
        while loop.time() < stop:
            sent = loop.time()
            status = await driver.call()
            now = loop.time()
            result.sent += 1
            _count(result, status, now - sent, done_at, now)
            if not isinstance(status, int):
                await asyncio.sleep(0.001)  # a dead server must not become a busy loop

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.duration_s = max(loop.time() - start, 1e-9)
    result.throughput_rps = _windows(done_at, start, duration, windows)
    return result


def _driver_for(
    target: HttpTarget | Callable[[], Any], inputs: Any, connections: int, timeout_s: float
) -> Driver:
    if isinstance(target, HttpTarget):
        return _HttpDriver(target, connections, timeout_s)
    return _GrpcDriver(target(), inputs)


async def _with_driver(
    target: HttpTarget | Callable[[], Any],
    inputs: Any,
    connections: int,
    timeout_s: float,
    body: Callable[[Driver], Awaitable[LoadResult]],
) -> LoadResult:
    driver = _driver_for(target, inputs, connections, timeout_s)
    try:
        await driver.prewarm(min(connections, 32))
        return await body(driver)
    finally:
        driver.close()
        if isinstance(driver, _GrpcDriver):
            with contextlib.suppress(Exception):
                await driver.client.close()


def open_loop(
    target: HttpTarget | Callable[[], Any],
    rate: float,
    duration: float,
    *,
    arrival: str = "poisson",
    timeout_s: float = 5.0,
    connections: int = 512,
    inputs: Any = None,
    seed: int = 0,
    windows: int = 5,
) -> LoadResult:
    """Offer `rate` requests/s for `duration` seconds. `target` is an HttpTarget, or for gRPC a factory of
    a codec's GrpcClient (made inside the generator's event loop) with `inputs`."""
    return _run(
        _with_driver(
            target,
            inputs,
            connections,
            timeout_s,
            lambda d: _open_loop(d, rate, duration, arrival, timeout_s, seed, windows),
        )
    )


def closed_loop(
    target: HttpTarget | Callable[[], Any],
    concurrency: int,
    duration: float,
    *,
    timeout_s: float = 5.0,
    inputs: Any = None,
    windows: int = 5,
) -> LoadResult:
    """`concurrency` clients, each sending its next request as soon as its last one is answered."""
    return _run(
        _with_driver(
            target,
            inputs,
            concurrency,
            timeout_s,
            lambda d: _closed_loop(d, concurrency, duration, windows),
        )
    )


@dataclass
class RateSearch:
    """Throughput at a p99 bound: the highest offered rate whose p99 met the SLO with no errors."""

    slo_s: float
    best_rps: float = 0.0
    best: LoadResult | None = None
    tried: list[LoadResult] = field(default_factory=list)
    capped_by_generator: bool = False


def rate_search(
    run: Callable[[float], LoadResult],
    slo_s: float,
    start_rps: float,
    ceiling_rps: float,
    steps: int = 6,
) -> RateSearch:
    """Double the offered rate from `start_rps` until the p99 breaks the SLO (or errors appear), then
    bisect between the last good and the first bad rate. Rates never exceed `ceiling_rps`, the generator's
    own measured ceiling: a server that meets the SLO there is reported as 'at least' that fast."""
    search = RateSearch(slo_s)

    def good(r: LoadResult) -> bool:
        # Every request answered (none failed, none still pending at the end) within the bound.
        return r.failed == 0 and r.ok >= r.sent and r.percentile(99) <= slo_s

    lo, hi = 0.0, None
    rate = max(1.0, min(start_rps, ceiling_rps))
    for _ in range(steps):
        r = run(rate)
        search.tried.append(r)
        if good(r):
            lo = rate
            if search.best is None or r.achieved_rps >= search.best.achieved_rps:
                search.best, search.best_rps = r, r.achieved_rps
            if hi is None:
                if rate >= ceiling_rps:
                    search.capped_by_generator = True
                    break
                rate = min(rate * 2, ceiling_rps)
                continue
        else:
            hi = rate
        if hi is not None:
            if hi - lo <= max(0.1 * hi, 1.0):
                break
            rate = (lo + hi) / 2 if lo > 0 else hi / 4
    return search


def knee(run: Callable[[float], LoadResult], rates: list[float]) -> list[LoadResult]:
    """Latency against offered load, one open-loop run per rate (the classic knee curve)."""
    return [run(rate) for rate in rates]


def ceiling(duration: float = 2.0, concurrency: int = 64) -> tuple[float, LoadResult]:
    """The generator's own ceiling: closed loop against bakeoff's no-op server (in its own process)."""
    from bakeoff.stages.serve.noop import running_noop

    with running_noop() as address:
        target = HttpTarget.of(address, Request("POST", "/noop", {"Content-Type": "application/json"}, b"{}"))
        closed_loop(target, concurrency, 0.3)  # warm-up
        result = closed_loop(target, concurrency, duration)
    return result.achieved_rps, result


def now() -> float:
    return time.monotonic()


def _run(coro: Coroutine[Any, Any, LoadResult]) -> LoadResult:
    """asyncio.run, or the same in a thread of its own when this thread already runs an event loop (a
    notebook, or Playwright's sync API in the same process): asyncio.run refuses to nest."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()
