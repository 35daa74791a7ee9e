"""The load generator on its own: latency counted from the intended send time (no coordinated omission),
its rate search, and arrivals. A deliberately serial test server (one request at a time, 40 ms each) stands
in for an overloaded model server."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Iterator

import numpy as np
import pytest

from bakeoff.stages.serve import load
from bakeoff.stages.serve.protocols import Request

SERVICE_S = 0.04
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"


@pytest.fixture(scope="module")
def serial_server() -> Iterator[str]:
    """Answers one request at a time, each after SERVICE_S: at most 25 requests/s."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, object] = {}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        lock = holder["lock"]
        assert isinstance(lock, asyncio.Lock)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                await reader.readexactly(length)
                async with lock:
                    await asyncio.sleep(SERVICE_S)
                writer.write(RESPONSE)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def start() -> None:
        holder["lock"] = asyncio.Lock()
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        holder["port"] = server.sockets[0].getsockname()[1]
        ready.set()
        async with server:
            await server.serve_forever()

    def run() -> None:
        asyncio.set_event_loop(loop)
        task = loop.create_task(start())
        loop.run_forever()
        task.cancel()
        loop.run_until_complete(asyncio.gather(task, return_exceptions=True))
        loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(10)
    yield f"http://127.0.0.1:{holder['port']}"
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def target(address: str) -> load.HttpTarget:
    return load.HttpTarget.of(address, Request("POST", "/", {"Content-Type": "application/json"}, b"{}"))


@pytest.mark.slow
def test_open_loop_counts_queueing_that_a_closed_loop_hides(serial_server: str) -> None:
    # One closed-loop client sees only the service time; offering twice the capacity must show the queue.
    closed = load.closed_loop(target(serial_server), 1, 1.0)
    assert closed.percentile(50) < 3 * SERVICE_S
    opened = load.open_loop(target(serial_server), 50, 1.5, arrival="constant", timeout_s=10)
    assert opened.ok == opened.sent and opened.failed == 0
    # 75 requests at 25/s take 3 s: the last waited about 1.5 s past its intended send time.
    assert opened.percentile(99) > 1.0, opened.summary()
    assert opened.achieved_rps < 30


@pytest.mark.slow
def test_rate_search_finds_the_capacity_at_the_slo(serial_server: str) -> None:
    search = load.rate_search(
        lambda rate: load.open_loop(target(serial_server), rate, 1.0, timeout_s=10),
        slo_s=0.25,
        start_rps=5,
        ceiling_rps=1000,
        steps=6,
    )
    assert search.best is not None and 5 <= search.best_rps <= 30, [r.summary() for r in search.tried]
    assert not search.capped_by_generator


@pytest.mark.slow
def test_rate_search_stops_at_the_generators_ceiling(serial_server: str) -> None:
    search = load.rate_search(
        lambda rate: load.open_loop(target(serial_server), rate, 0.5, timeout_s=10),
        slo_s=5.0,
        start_rps=4,
        ceiling_rps=8,
        steps=4,
    )
    assert search.capped_by_generator and max(r.offered_rps or 0 for r in search.tried) == 8


def test_poisson_arrivals_have_the_asked_rate_and_exponential_gaps() -> None:
    times = load.arrival_times(200.0, 50.0, "poisson", seed=1)
    gaps = np.diff(times)
    assert len(times) == pytest.approx(10_000, rel=0.05)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, abs=0.05)  # exponential: CV 1
    assert np.all(np.diff(load.arrival_times(10, 1, "constant")) == pytest.approx(0.1))


@pytest.mark.slow
def test_the_generator_runs_where_an_event_loop_already_runs(serial_server: str) -> None:
    # A notebook, or Playwright's sync API in the same process, keeps a loop running in the main thread.
    async def inside() -> load.LoadResult:
        return load.closed_loop(target(serial_server), 1, 0.3)

    # In a thread of its own: another test in this pytest worker may have left a loop in the main thread.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        result = pool.submit(asyncio.run, inside()).result()
    assert result.ok > 0 and result.failed == 0
