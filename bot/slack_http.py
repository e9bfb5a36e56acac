"""Keep-alive connections for the bot's calls to Slack.

slack_sdk opens a new connection for every Web API call and every response URL
post (urllib sends ``Connection: close``): over HTTPS each pays a TLS
handshake, about 1.3 ms of CPU (``bench/slack_calls.py``), as much as a whole
request of the bot's own work, and two round trips to Slack besides TCP's one.
The clients here send their calls over connections kept open by
:class:`SlackConnections`, one pool per process, shared by its threads.

They are slack_sdk's clients with one method replaced: the one that sends a
prepared ``urllib`` request (``_perform_urllib_http_request_internal`` for the
Web API, ``_perform_http_request_internal`` for response URLs), so retries,
rate limits and errors stay slack_sdk's. Those are private methods: should a
slack_sdk release rename them, the clients would quietly open a connection
per call again (still correct); ``tests/test_slack_http.py`` counts
connections and fails then. Bolt builds a ``client`` and a ``respond`` of its
own for each request; :func:`register` swaps them for these (``respond``
builds its message with Bolt's own, private, ``_build_message``).
"""

from __future__ import annotations

import http.client
import io
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from ssl import SSLContext
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit
from urllib.request import Request

from slack_bolt import App, BoltContext, BoltResponse, Respond
from slack_bolt.context.respond.internals import _build_message
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler
from slack_sdk.models.attachments import Attachment
from slack_sdk.models.blocks import Block
from slack_sdk.webhook import WebhookClient, WebhookResponse

from bot.call_deadlines import Deadlines, Watch
from bot.rate_limits import ShortRateLimitRetryHandler
from bot.sockets import readable_now

log = logging.getLogger(__name__)

#: A connection idle this long is closed rather than reused: servers and the
#: NATs between close idle connections after a while, and one dropped
#: without a word would make the next call wait for its whole timeout.
IDLE_SECONDS = 15.0
#: Idle connections kept per server: about as many as the threads that call
#: Slack at once in a process (after-ack work, forms, listeners).
IDLE_PER_SERVER = 16

#: What Slack answers any call with for a bot token that will not work
#: however often it is asked, until someone mends the app's install
#: (anything else, a 5xx, no answer, may pass: it is not the token's fault).
TOKEN_REFUSALS = frozenset({"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired",
                            "not_allowed_token_type"})

_Server = tuple[str, str, int, SSLContext | None]
#: How a connection the server has closed fails a request sent on it.
_CLOSED = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


class _ClosedBeforeAnswer(Exception):
    """A kept connection turned out closed before any of the answer came."""


@dataclass(frozen=True)
class Answer:
    """A 2xx answer, read in full."""

    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def text(self) -> str:
        return self.body.decode(self.headers.get_content_charset() or "utf-8")


class SlackConnections:
    """Open connections to Slack's servers, kept between calls.

    A call takes the most recently used idle connection to its server (or
    opens one), and gives it back once the answer is read in full, unless the
    server said it would close it. An idle connection that has something to
    read (the server closed it, as a live idle one has nothing to say) or has
    been idle over ``idle_seconds`` is closed instead of used.
    """

    def __init__(self, *, idle_seconds: float = IDLE_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self._idle_seconds = idle_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._idle: dict[_Server, list[tuple[float, http.client.HTTPConnection]]] = {}
        self._deadlines = Deadlines()

    def send(self, request: Request, *, tls: SSLContext | None, timeout: float) -> Answer:
        """Send ``request`` as urllib's ``urlopen`` would, and raise as it does:
        ``URLError`` when the request could not be sent, ``HTTPError`` (its
        body readable) for an answer outside 2xx. Redirects are not followed
        (Slack's Web API and response URLs answer directly).

        ``timeout`` bounds the whole call, not each socket operation
        (``bot.call_deadlines``): a request not sent and answered in full by
        then raises ``TimeoutError``, and is not retried. (A new connection's
        connect and TLS handshake are bounded by ``timeout`` on each of their
        socket operations only; the request is not sent once the deadline
        has passed.) A kept connection the server closed just as the request
        went out (after the check in ``_take``) fails before any answer: the
        request goes once more, on a new connection, as browsers do, in what
        is left of ``timeout``."""
        parts = urlsplit(request.full_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise URLError(f"not an HTTP URL: {request.full_url}")
        server = (parts.scheme, parts.hostname, parts.port or (443 if parts.scheme == "https" else 80), tls)
        started = time.monotonic()
        kept = self._take(server)
        if kept is not None:
            try:
                return self._exchange(server, kept, request, timeout=timeout, reused=True)
            except _ClosedBeforeAnswer:
                timeout -= time.monotonic() - started
                if timeout <= 0:
                    raise TimeoutError(f"no answer from {server[1]} in time") from None
        return self._exchange(server, _open(server, timeout), request, timeout=timeout, reused=False)

    def _exchange(self, server: _Server, connection: http.client.HTTPConnection, request: Request, *,
                  timeout: float, reused: bool) -> Answer:
        connection.timeout = timeout
        if connection.sock is not None:
            connection.sock.settimeout(timeout)
        watch = self._deadlines.watch(timeout)
        kept = failure = None
        try:
            response, body, whole = self._talk(connection, request, watch, reused=reused)
        except (_ClosedBeforeAnswer, OSError, http.client.HTTPException) as error:
            failure = error
        # Released once, and before the connection is given back: a shut socket is never kept.
        expired = self._deadlines.release(watch)
        try:
            if expired and (failure is not None or not whole):  # shut at the deadline: that is why it ended
                raise TimeoutError(f"no whole answer from {server[1]} within {timeout:.1f} s") from failure
            if failure is not None:
                raise failure
            if not expired and not response.will_close:
                kept = self._give_back(server, connection)
        finally:
            if not kept:
                connection.close()
        if not 200 <= response.status < 300:
            raise HTTPError(request.full_url, response.status, response.reason, response.headers, io.BytesIO(body))
        return Answer(status=response.status, headers=response.headers, body=body)

    def _talk(self, connection: http.client.HTTPConnection, request: Request, watch: Watch, *,
              reused: bool) -> tuple[http.client.HTTPResponse, bytes, bool]:
        """Send ``request`` and read its answer: the answer, its body, and
        whether that body is whole however the read ended (its length was
        given, or it came in chunks: a cut shows as ``IncompleteRead``). A new
        connection's connect and TLS handshake are bounded by the socket's
        timeout on each operation; from then on the deadline watches it."""
        if connection.sock is None:
            try:
                connection.connect()
            except OSError as error:  # as urllib reports a failure to connect
                raise URLError(error) from error
        self._deadlines.attach(watch, connection.sock)
        try:
            connection.request(request.get_method(), request.selector, body=request.data,
                               headers=dict(request.header_items()))
        except OSError as error:  # as urllib reports a failure to send
            if reused and isinstance(error, _CLOSED):
                raise _ClosedBeforeAnswer from error
            raise URLError(error) from error
        try:
            response = connection.getresponse()
        except _CLOSED as error:  # RemoteDisconnected among them: no status line came
            if reused:
                raise _ClosedBeforeAnswer from error
            raise
        delimited = response.chunked or response.length is not None
        return response, response.read(), delimited

    def close(self) -> None:
        """Close every idle connection, and stop the deadlines' thread (a
        process stopping, a test ending)."""
        with self._lock:
            idle, self._idle = self._idle, {}
        for connections in idle.values():
            for _, connection in connections:
                connection.close()
        self._deadlines.close()

    def _take(self, server: _Server) -> http.client.HTTPConnection | None:
        now = self._clock()
        with self._lock:
            connections = self._idle.get(server)
            while connections:
                since, connection = connections.pop()
                sock = connection.sock
                if sock is not None and now - since <= self._idle_seconds and not readable_now(sock.fileno()):
                    return connection
                connection.close()
        return None

    def _give_back(self, server: _Server, connection: http.client.HTTPConnection) -> bool:
        """Keep ``connection`` for the next call; False when enough are idle."""
        with self._lock:
            connections = self._idle.setdefault(server, [])
            if len(connections) >= IDLE_PER_SERVER:
                return False
            connections.append((self._clock(), connection))
            return True


def _open(server: _Server, timeout: float) -> http.client.HTTPConnection:
    scheme, host, port, tls = server
    if scheme == "https":
        return http.client.HTTPSConnection(host, port, timeout=timeout, context=tls)
    return http.client.HTTPConnection(host, port, timeout=timeout)


class PooledWebClient(WebClient):
    """slack_sdk's Web API client, its calls sent over ``connections``."""

    def __init__(self, *args: Any, connections: SlackConnections, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connections = connections

    @classmethod
    def like(cls, client: WebClient, connections: SlackConnections) -> PooledWebClient:
        """A client set up as ``client`` (token, URL, timeout, TLS, retries)."""
        return cls(
            token=client.token,
            base_url=client.base_url,
            timeout=client.timeout,
            ssl=client.ssl,
            proxy=client.proxy,
            headers=client.headers,
            team_id=client.default_params.get("team_id"),
            logger=client.logger,
            retry_handlers=client.retry_handlers,
            connections=connections,
        )

    def _perform_urllib_http_request_internal(self, url: str, req: Request) -> dict[str, Any]:
        if self.proxy:  # urllib knows proxies; these connections do not
            return super()._perform_urllib_http_request_internal(url, req)
        answer = self.connections.send(req, tls=self.ssl, timeout=self.timeout)
        if answer.headers.get_content_type() == "application/gzip":
            return {"status": answer.status, "headers": answer.headers, "body": answer.body}
        return {"status": answer.status, "headers": answer.headers, "body": answer.text()}


class PooledWebhookClient(WebhookClient):
    """slack_sdk's response URL client, its posts sent over ``connections``."""

    def __init__(self, *args: Any, connections: SlackConnections, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connections = connections

    def _perform_http_request_internal(self, url: str, req: Request) -> WebhookResponse:
        if self.proxy:
            return super()._perform_http_request_internal(url, req)
        answer = self.connections.send(req, tls=self.ssl, timeout=self.timeout)
        return WebhookResponse(url=url, status_code=answer.status, body=answer.text(), headers=answer.headers)  # type: ignore[arg-type]


#: slack_sdk's response URL client retries dropped connections only; a short
#: 429 is waited out too (``bot.rate_limits``).
_RESPOND_RETRIES = [ConnectionErrorRetryHandler(), ShortRateLimitRetryHandler(max_retry_count=1)]


class PooledRespond(Respond):
    """Bolt's ``respond``, posting over ``connections``: the same arguments and
    message (Bolt's ``_build_message``), another client."""

    def __init__(self, *, response_url: str | None, proxy: str | None, ssl: SSLContext | None,
                 connections: SlackConnections) -> None:
        super().__init__(response_url=response_url, proxy=proxy, ssl=ssl)
        self.connections = connections

    def __call__(
        self,
        text: str | dict[str, Any] = "",
        blocks: Sequence[dict[str, Any] | Block] | None = None,
        attachments: Sequence[dict[str, Any] | Attachment] | None = None,
        response_type: str | None = None,
        replace_original: bool | None = None,
        delete_original: bool | None = None,
        unfurl_links: bool | None = None,
        unfurl_media: bool | None = None,
        thread_ts: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> WebhookResponse:
        if self.response_url is None:
            raise ValueError("respond is unsupported here as there is no response_url")
        if isinstance(text, dict):
            message = _build_message(**text)
        else:
            message = _build_message(
                text=text, blocks=blocks, attachments=attachments, response_type=response_type,
                replace_original=replace_original, delete_original=delete_original, unfurl_links=unfurl_links,
                unfurl_media=unfurl_media, thread_ts=thread_ts, metadata=metadata,
            )
        client = PooledWebhookClient(url=self.response_url, proxy=self.proxy, ssl=self.ssl,
                                     connections=self.connections, retry_handlers=_RESPOND_RETRIES)
        response = client.send_dict(message)
        if response.status_code != 200:  # slack_sdk returns it: said here, not lost
            log.warning("a response URL post was answered %s: %s", response.status_code, (response.body or "")[:200])
        return response


def register(app: App, connections: SlackConnections) -> None:
    """Every listener's ``client`` and ``respond`` send over ``connections``."""

    @app.middleware
    def keep_alive(context: BoltContext, next: Callable[[], BoltResponse]) -> BoltResponse:  # noqa: A002 (Bolt's name)
        client = context.client
        if client is not None:
            context["client"] = PooledWebClient.like(client, connections)
            if context.response_url is not None:
                context["respond"] = PooledRespond(response_url=context.response_url, proxy=client.proxy,
                                                   ssl=client.ssl, connections=connections)
        return next()
