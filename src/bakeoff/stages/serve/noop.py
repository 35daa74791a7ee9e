"""bakeoff's no-op HTTP server: answers every request with a fixed 200 JSON body and does nothing else.
Its own process, raw asyncio protocol, no framework: what the load generator drives here is the
generator's own ceiling (plus the kernel's loopback), not a server's."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

BODY = b'{"outputs":[]}'
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
    + str(len(BODY)).encode()
    + b"\r\n\r\n"
    + BODY
)


class _Noop(asyncio.Protocol):
    def __init__(self) -> None:
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end]).lower()
            pos = head.find(b"\r\ncontent-length:")
            length = 0
            if pos >= 0:
                stop = head.find(b"\r\n", pos + 2)
                length = int(head[pos + 17 : stop if stop >= 0 else len(head)])
            if len(self.buf) < end + 4 + length:
                return
            del self.buf[: end + 4 + length]
            assert self.transport is not None
            self.transport.write(RESPONSE)


async def _serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Noop, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


@contextlib.contextmanager
def running_noop() -> Iterator[str]:
    """Start the no-op server in its own process group; yield its address; stop it."""
    from bakeoff.process_group import free_port, start_group, stop_group
    from bakeoff.stages.serve.servers.base import wait_until

    port = free_port()
    log_path = Path(tempfile.mkdtemp(prefix="bakeoff-noop-")) / "noop.log"
    proc, log = start_group(
        [sys.executable, "-m", "bakeoff.stages.serve.noop", "--port", str(port)], log_path
    )
    address = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(address), proc, log_path, "bakeoff's no-op server", 20)
        yield address
    finally:
        stop_group(proc, 2.0)
        log.close()


def _answers(address: str) -> bool:
    with urllib.request.urlopen(address + "/", timeout=1) as r:
        return bool(r.status == 200)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.port))


if __name__ == "__main__":
    main()
