"""A TCP relay, run as its own process (``python tests/relay.py LISTEN_HOST LISTEN_PORT
TARGET_HOST TARGET_PORT``): the silent-network tests put one on each side of a virtual link
so that PostgreSQL's traffic crosses it. Prints ``ready`` once it listens; a connection it
cannot carry on is closed, and the relay goes on serving the others."""

from __future__ import annotations

import contextlib
import socket
import sys
import threading


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)


def _carry(client: socket.socket, target: tuple[str, int]) -> None:
    try:
        upstream = socket.create_connection(target, timeout=30)
    except OSError as exc:
        print(f"relay: cannot reach {target}: {exc}", file=sys.stderr, flush=True)
        client.close()
        return
    upstream.settimeout(None)
    for source, sink in ((client, upstream), (upstream, client)):
        threading.Thread(target=_pipe, args=(source, sink), daemon=True).start()


def main(listen_host: str, listen_port: str, target_host: str, target_port: str) -> None:
    server = socket.create_server((listen_host, int(listen_port)))
    print("ready", flush=True)
    target = (target_host, int(target_port))
    while True:
        client, _ = server.accept()
        threading.Thread(target=_carry, args=(client, target), daemon=True).start()


if __name__ == "__main__":
    main(*sys.argv[1:])
