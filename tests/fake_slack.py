"""A fake Slack Web API: a real HTTP server on loopback that records every call.

It answers the methods the bot uses the way Slack does (``{"ok": true, …}``),
can be told to fail a method (an HTTP 429 with ``Retry-After``, a 500, or an
``ok: false`` error), and also serves response URLs, recording what was posted
to them. Tests assert on ``calls`` and ``responses``.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import ssl
import threading
from collections import defaultdict, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

BOT_USER = "U0BOT00001"
#: Slack refuses a message whose blocks hold more text than about this
#: (``msg_blocks_too_long``; undocumented: refused at 11,341 characters
#: counted as here by one report, at 13,297 by another).
BLOCKS_TEXT_LIMIT = 11_000


def blocks_text(params: dict[str, Any]) -> int:
    """How many characters of text a call's blocks hold, in every element."""
    blocks = params.get("blocks") or []
    blocks = json.loads(blocks) if isinstance(blocks, str) else blocks

    def count(value: Any) -> int:
        if isinstance(value, dict):
            return sum(len(v) if k == "text" and isinstance(v, str) else count(v) for k, v in value.items())
        if isinstance(value, list):
            return sum(count(v) for v in value)
        return 0

    return count(blocks)


class _Server(ThreadingHTTPServer):
    """Slack's side of the connections the bot opens: the standard library's
    backlog of 5 connections not yet accepted overflowed under bench/load.py
    (when every call opened one), and the kernel made the caller try again a
    second later (its SYN retransmission)."""

    request_queue_size = 128


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    headers: dict[str, str]

    @property
    def view(self) -> dict[str, Any]:
        """The view a ``views.*`` call carried (sent as JSON text or as an object)."""
        view = self.params["view"]
        return json.loads(view) if isinstance(view, str) else view  # type: ignore[no-any-return]


@dataclass
class Failure:
    status: int = 200
    error: str | None = None
    retry_after: int | str | None = None
    #: Done, and its answer cut off halfway (the connection closed before the body ended).
    cut: bool = False


@dataclass
class FakeSlack:
    team_id: str = "T0001"
    calls: list[Call] = field(default_factory=list)
    responses: list[dict[str, Any]] = field(default_factory=list)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    socket_url: str | None = None
    uploads: dict[str, bytes] = field(default_factory=dict)
    hosted_files: dict[str, bytes] = field(default_factory=dict)
    #: Files whose URL answers with a redirect to another URL (as Enterprise Grid's file hosts do).
    redirected_files: dict[str, str] = field(default_factory=dict)
    #: The names of the hosted files downloaded, in order.
    downloads: list[str] = field(default_factory=list)
    _failures: dict[str, deque[Failure]] = field(default_factory=lambda: defaultdict(deque))
    _ts: itertools.count = field(default_factory=lambda: itertools.count(1))  # type: ignore[type-arg]
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _down: int | None = None
    _open: set[socket.socket] = field(default_factory=set)
    _drops: int = 0
    _holds: dict[str, threading.Event] = field(default_factory=dict)
    #: Connections accepted so far (Slack keeps a connection open for the next
    #: call, HTTP/1.1, unless the caller asks it to close).
    connections: int = 0
    #: Serve HTTPS with this (server-side) context instead of plain HTTP.
    tls: ssl.SSLContext | None = None

    # ------------------------------------------------------------ control

    @property
    def base_url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"{'https' if self.tls else 'http'}://{host}:{port}/api/"

    def response_url(self, name: str = "r1") -> str:
        return self.base_url.replace("/api/", f"/respond/{name}")

    def user(self, user_id: str, *, tz: str = "UTC", is_admin: bool = False, real_name: str | None = None,
             is_bot: bool = False) -> None:
        """Make ``users.info`` describe ``user_id`` this way."""
        self.users[user_id] = {"id": user_id, "team_id": self.team_id, "tz": tz, "is_admin": is_admin,
                               "is_bot": is_bot}
        if real_name is not None:
            self.users[user_id]["real_name"] = real_name

    def fail(self, method: str, *, times: int = 1, status: int = 200, error: str | None = None,
             retry_after: int | str | None = None, cut: bool = False) -> None:
        """The next ``times`` calls of ``method`` fail this way (``"respond"``: the
        next response URL posts, answered ``status`` with ``error`` as text);
        ``cut``: each is done (a message posted), but its answer is cut off."""
        for _ in range(times):
            self._failures[method].append(Failure(status=status, error=error, retry_after=retry_after, cut=cut))

    def outage(self, *, status: int = 500) -> None:
        """Every Web API call fails with ``status`` until :meth:`recover`."""
        self._down = status

    def recover(self) -> None:
        self._down = None

    def host_file(self, name: str, data: bytes) -> str:
        """Serve ``data`` as a Slack file's ``url_private_download``; returns that URL."""
        self.hosted_files[name] = data
        return self.base_url.replace("/api/", f"/files/{name}")

    def redirect_file(self, name: str, to_url: str) -> str:
        """Make the URL of ``name`` answer 302 to ``to_url``; returns that URL."""
        self.redirected_files[name] = to_url
        return self.base_url.replace("/api/", f"/files/{name}")

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [call for call in self.calls if call.method == method]

    def outgoing_text(self) -> str:
        """Everything the bot sent anywhere, as one string (for escaping checks)."""
        with self._lock:
            parts = [json.dumps(call.params) for call in self.calls]
            parts += [json.dumps(body) for body in self.responses]
        return "\n".join(parts)

    @contextlib.contextmanager
    def hold(self, method: str) -> Iterator[None]:
        """Calls of ``method`` made in the block are recorded, then answered
        only when it ends (or after 10 s): a call in flight while the test
        does something else."""
        gate = self._holds[method] = threading.Event()
        try:
            yield
        finally:
            del self._holds[method]
            gate.set()

    def drop_next_request(self) -> None:
        """The next POST is read and its connection closed without an answer or
        a record, as by a server closing a kept connection just as a request
        arrives on it."""
        with self._lock:
            self._drops += 1

    def close_connections(self) -> None:
        """Close every open connection from this side, as Slack's servers do
        with idle ones after a while."""
        with self._lock:
            open_now = list(self._open)
        for sock in open_now:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()
            self.responses.clear()
            self.downloads.clear()

    # ------------------------------------------------------------ serving

    def start(self) -> FakeSlack:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # every answer has a Content-Length
            # An answer's headers and body go out in two writes: with Nagle's
            # algorithm the body would wait for the caller's delayed ACK (40 ms)
            # on a kept connection.
            disable_nagle_algorithm = True

            def setup(self) -> None:
                super().setup()
                with fake._lock:
                    fake.connections += 1
                    fake._open.add(self.connection)

            def finish(self) -> None:
                with fake._lock:
                    fake._open.discard(self.connection)
                super().finish()

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                return

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                name = self.path.removeprefix("/files/")
                known = name in fake.hosted_files or name in fake.redirected_files
                if not self.path.startswith("/files/") or not known:
                    self._send(404, "not found", "text/plain")
                    return
                if self.headers.get("Authorization") != "Bearer xoxb-e2e-test":
                    self._send(403, "no token", "text/plain")
                    return
                if name in fake.redirected_files:
                    self.send_response(302)
                    self.send_header("Location", fake.redirected_files[name])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = fake.hosted_files[name]
                with fake._lock:
                    fake.downloads.append(name)
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length") or 0)
                if self.path.startswith("/upload/"):
                    with fake._lock:
                        fake.uploads[self.path.removeprefix("/upload/")] = self.rfile.read(length)
                    self._send(200, "OK - uploaded", "text/plain")
                    return
                raw = self.rfile.read(length).decode()
                with fake._lock:
                    drop, fake._drops = fake._drops > 0, max(fake._drops - 1, 0)
                if drop:
                    self.close_connection = True
                    return
                if self.headers.get("Content-Type", "").startswith("application/json"):
                    params = json.loads(raw or "{}")
                else:
                    params = dict(parse_qsl(raw))
                if self.path.startswith("/respond/"):
                    with fake._lock:  # fake.fail("respond", …) fails the next response URL posts
                        failure = fake._failures["respond"].popleft() if fake._failures["respond"] else None
                    if failure is not None:
                        headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
                        self._send(failure.status, failure.error or "failed", "text/plain", headers)
                        return
                    self._send(200, "ok", "text/plain")
                    with fake._lock:  # after the answer: a test seeing it knows the post is over
                        fake.responses.append(params)
                    return
                method = self.path.removeprefix("/api/")
                with fake._lock:
                    fake.calls.append(Call(method, params, dict(self.headers.items())))
                    failure = fake._failures[method].popleft() if fake._failures[method] else None
                    if fake._down is not None and method != "auth.test":
                        failure = Failure(status=fake._down)
                gate = fake._holds.get(method)
                if gate is not None:
                    gate.wait(timeout=10)
                if failure is not None and failure.cut:
                    whole = json.dumps(fake.answer(method, params)).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(whole)))
                    self.end_headers()
                    self.wfile.write(whole[: len(whole) // 2])
                    self.close_connection = True
                    return
                if failure is not None and failure.status != 200:
                    headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
                    self._send(failure.status, json.dumps({"ok": False, "error": "ratelimited" if failure.status == 429 else "internal_error"}), "application/json", headers)
                    return
                if failure is not None:
                    self._send(200, json.dumps({"ok": False, "error": failure.error}), "application/json")
                    return
                if method in ("chat.postMessage", "chat.postEphemeral") and blocks_text(params) > BLOCKS_TEXT_LIMIT:
                    self._send(200, json.dumps({"ok": False, "error": "msg_blocks_too_long"}), "application/json")
                    return
                self._send(200, json.dumps(fake.answer(method, params)), "application/json")

            def _send(self, status: int, body: str, content_type: str, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                encoded = body.encode()
                self.send_header("Content-Length", str(len(encoded)))
                self.end_headers()
                self.wfile.write(encoded)

        self._server = _Server(("127.0.0.1", 0), Handler)
        if self.tls is not None:
            self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self.close_connections()

    def answer(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """What Slack would answer a successful call with (the parts the bot reads)."""
        if method == "auth.test":
            return {"ok": True, "user_id": BOT_USER, "bot_id": "B0BOT", "team_id": self.team_id, "team": "Test"}
        if method == "users.info":
            user_id = str(params.get("user"))
            user = self.users.get(user_id) or {"id": user_id, "team_id": self.team_id, "tz": "UTC"}
            return {"ok": True, "user": user}
        if method == "chat.postMessage":
            ts = f"1700000000.{next(self._ts):06d}"
            return {"ok": True, "channel": params.get("channel"), "ts": ts, "message": {"ts": ts}}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": f"1700000000.{next(self._ts):06d}"}
        if method in ("views.open", "views.push", "views.publish", "views.update"):
            view = params.get("view")
            return {"ok": True, "view": json.loads(view) if isinstance(view, str) else view}
        if method == "chat.getPermalink":
            return {"ok": True, "permalink": f"https://test.slack.com/archives/{params.get('channel')}/p{str(params.get('message_ts')).replace('.', '')}"}
        if method == "conversations.open":
            return {"ok": True, "channel": {"id": "D" + str(params.get("users", "X"))[1:]}}
        if method == "files.getUploadURLExternal":
            file_id = f"F{next(self._ts):06d}"
            return {"ok": True, "file_id": file_id, "upload_url": self.base_url.replace("/api/", f"/upload/{file_id}")}
        if method == "files.completeUploadExternal":
            files = params.get("files")
            files = json.loads(files) if isinstance(files, str) else files
            return {"ok": True, "files": [{"id": f["id"], "title": f.get("title")} for f in files or []]}
        if method == "apps.connections.open":
            return {"ok": True, "url": self.socket_url}
        return {"ok": True}
