"""A tiny HTTP proxy for tests that forwards everything except the bytes of `/sse` responses.

It plays a proxy that buffers `text/event-stream` forever: the browser's request reaches the
server, the server streams, and not one byte (not even the status line) comes back. Every other
request (the page, /poll, /ws upgrades) is piped both ways untouched.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator


def _pipe(src: socket.socket, dst: socket.socket | None) -> None:
    """Copy src -> dst until src ends; dst None swallows everything (the buffering)."""
    with contextlib.suppress(OSError):
        while data := src.recv(65536):
            if dst is not None:
                dst.sendall(data)
    for sock in (src, dst):
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def _serve(client: socket.socket, upstream: tuple[str, int], opened: list[socket.socket]) -> None:
    """One proxied connection. Its sockets are closed here, and any socket error ends it quietly:
    the proxy may stop (and close every socket) at any point of it."""
    with client, contextlib.suppress(OSError):
        head = _read_head(client)
        if not head:
            return
        with socket.create_connection(upstream) as server:
            opened.append(server)
            server.sendall(head)
            swallow = head.split(b" ", 2)[1].startswith(b"/sse") if head.count(b" ") >= 2 else False
            threading.Thread(target=_pipe, args=(client, server), daemon=True).start()
            _pipe(server, None if swallow else client)


def _read_head(client: socket.socket) -> bytes:
    """The request head; for anything but a WebSocket upgrade rewritten to `Connection: close`.

    One request per connection: the browser would otherwise reuse the page's connection for
    /sse, and this proxy only looks at the first request line.
    """
    head = b""
    while b"\r\n\r\n" not in head and len(head) < 65536:
        chunk = client.recv(65536)
        if not chunk:
            break
        head += chunk
    if head and b"upgrade: websocket" not in head.lower():
        lines = [
            line for line in head.split(b"\r\n") if not line.lower().startswith(b"connection:")
        ]
        head = b"\r\n".join([lines[0], b"Connection: close", *lines[1:]])
    return head


@contextlib.contextmanager
def buffering_proxy(upstream_url: str) -> Iterator[str]:
    """Yield the base URL of a proxy to `upstream_url` (http://host:port) that buffers /sse."""
    host, port = upstream_url.removeprefix("http://").rsplit(":", 1)
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()
    opened: list[socket.socket] = []  # every socket, closed when the proxy stops

    def accept() -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return
            opened.append(client)
            args = (client, (host, int(port)), opened)
            threading.Thread(target=_serve, args=args, daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        listener.close()
        thread.join(5)
        for sock in opened:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
