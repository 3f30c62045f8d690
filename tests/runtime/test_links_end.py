"""An upstream's end over TLS when its receiver has already gone: a receiver that knows the
run's length takes the last window and closes, and the END written after it must not fail the
sender (over TLS its drain raised 'Connection lost'; a stage whose route on the chip ends it
later than a socket would lost that race on the real nodes)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from darwin_dra.pipeline.local import stage_certificates
from darwin_dra.runtime import framing, links, tls


def test_finish_after_the_receiver_closed_over_tls_ends_cleanly(tmp_path: Path) -> None:
    certs, _ = stage_certificates(tmp_path, ["up", "down"])

    async def run() -> None:
        gone = asyncio.Event()

        async def receiver(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(1)  # the hello's first byte: it ran its last window, it leaves
            writer.close()
            await writer.wait_closed()
            gone.set()

        server = await asyncio.start_server(
            receiver, "127.0.0.1", 0, ssl=tls.server_context(certs["down"])
        )
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=tls.client_context(certs["up"]), server_hostname="down"
        )
        out = links.Outbound("down", 4, reader, writer)
        await out.hello(framing.Hello("plan", "up", "down", 4))
        await asyncio.wait_for(gone.wait(), 10)
        for _ in range(100):  # until the sender has seen the close
            if out._closed is not None:
                break
            await asyncio.sleep(0.05)
        writer.write(b"\0" * 65536)  # what was in flight when the receiver left
        await asyncio.wait_for(out.finish(100, timeout_s=5), 10)
        await out.close()
        server.close()
        await server.wait_closed()

    asyncio.run(run())
