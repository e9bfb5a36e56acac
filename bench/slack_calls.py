"""What one call to Slack over HTTPS costs the bot: a response URL post and a
Web API call, each on a new connection (as slack_sdk makes them), with a new
TLS context per connection (what Python does when given none) or with the
bot's one context (``bot.tls``); and on a connection kept open between calls,
as the bot sends them (``bot.slack_http``).

Setup, from a fresh clone: ``pip install -e '.[test]'`` (the certificates are
made with ``cryptography``, from the test extra), then::

    python bench/slack_calls.py --calls 200

The fake Slack (``tests/fake_slack.py``) runs in a child process over HTTPS
with the certificate of a throwaway CA; this process trusts the system's CA
certificates plus that CA (``SSL_CERT_FILE``), so that building a default
context loads as many certificates as it would in production. The figures
are this process's CPU per call (the child's is not counted) and the wall
time per call.
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing
import os
import ssl
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from slack_sdk import WebClient  # noqa: E402
from slack_sdk.webhook import WebhookClient  # noqa: E402

from bot.slack_http import PooledWebClient, PooledWebhookClient, SlackConnections  # noqa: E402
from bot.tls import tls_context  # noqa: E402
from tests.fake_slack import FakeSlack  # noqa: E402
from tests.tls_certs import write_ca_and_server  # noqa: E402

BLOCKS = [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 500}}]


def serve(server_pem: str, urls: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    """Child process: the fake Slack over HTTPS until the parent ends."""
    served = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    served.load_cert_chain(server_pem)
    urls.put(FakeSlack(tls=served).start().base_url)
    time.sleep(24 * 3600)


def per_call(call: Callable[[], object], calls: int) -> tuple[float, float]:
    """(CPU ms, wall ms) per call, after a few unmeasured ones."""
    for _ in range(5):
        call()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(calls):
        call()
    return (time.process_time() - cpu) / calls * 1000, (time.perf_counter() - wall) / calls * 1000


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200, help="calls measured per line")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        ca, server_pem = write_ca_and_server(Path(folder))
        system = ssl.get_default_verify_paths().cafile
        bundle = Path(folder) / "bundle.pem"
        bundle.write_bytes((Path(system).read_bytes() if system and Path(system).exists() else b"") + ca.read_bytes())
        os.environ["SSL_CERT_FILE"] = str(bundle)
        urls: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
        child = multiprocessing.Process(target=serve, args=(str(server_pem), urls), daemon=True)
        child.start()
        try:
            base_url = urls.get(timeout=30)
            response_url = base_url.replace("/api/", "/respond/bench")
            print(f"fake Slack at {base_url}; trusted: {system or 'no system CA file'} + a throwaway CA; "
                  f"Python {sys.version.split()[0]}, {ssl.OPENSSL_VERSION}")
            print(f"{'call':<24} {'connection, TLS context':<40} {'CPU ms/call':>11} {'wall ms/call':>12}")
            kept = SlackConnections()
            setups: tuple[tuple[str, WebhookClient, WebClient], ...] = (
                ("new, new per connection", WebhookClient(response_url),
                 WebClient(token="xoxb-bench", base_url=base_url)),
                ("new, the bot's one (bot.tls)", WebhookClient(response_url, ssl=tls_context()),
                 WebClient(token="xoxb-bench", base_url=base_url, ssl=tls_context())),
                ("kept (bot.slack_http), the bot's one",
                 PooledWebhookClient(response_url, ssl=tls_context(), connections=kept),
                 PooledWebClient(token="xoxb-bench", base_url=base_url, ssl=tls_context(), connections=kept)),
            )
            for name, hook, client in setups:
                lines = (
                    ("response URL post", functools.partial(hook.send, text="hi", blocks=BLOCKS)),
                    ("chat.postMessage", functools.partial(client.chat_postMessage, channel="U1", text="hi",
                                                           blocks=BLOCKS)),
                )
                for call_name, call in lines:
                    cpu, wall = per_call(call, args.calls)
                    print(f"{call_name:<24} {name:<40} {cpu:>11.2f} {wall:>12.2f}")
        finally:
            child.terminate()


if __name__ == "__main__":
    main()
