"""A TCP relay on loopback that a test can cut and restore: a server going
away at the network's edge (a database restarting or failing over), with the
real server behind it."""

from __future__ import annotations

import socket
import threading


class CuttableProxy:
    """Relays each connection to ``host:port``. :meth:`cut` closes every live
    connection and closes new ones as soon as they arrive, until :meth:`restore`."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._live: list[socket.socket] = []
        self._cut = False
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            self._cut = True
            live, self._live = self._live, []
        for connection in live:
            _close(connection)

    def restore(self) -> None:
        with self._lock:
            self._cut = False

    def close(self) -> None:
        _close(self._listener)  # shut down first: a bare close does not wake accept()
        self.cut()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # closed
                return
            with self._lock:
                if self._cut:
                    _close(client)
                    continue
                try:
                    upstream = socket.create_connection(self._target)
                except OSError:
                    _close(client)
                    continue
                self._live += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pipe, args=(source, sink), daemon=True).start()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        _close(sink)


def _close(connection: socket.socket) -> None:
    try:
        connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    connection.close()
