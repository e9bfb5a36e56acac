"""One TLS context per process for the bot's HTTPS calls to Slack.

Given no context, Python builds a new default one for each HTTPS connection,
and building one loads the system's CA certificates: about 17 ms of CPU on
the machine of the README's figures, for every new connection to Slack (a
Web API call or response URL post on a connection not kept open, and every
file download). Every client the bot makes for an https Slack (and the
per-request ones Bolt copies from it, its ``respond``, and the kept
connections of ``bot.slack_http``), and every download, shares this one,
made on first use, not at import.
"""

from __future__ import annotations

import functools
import ssl


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The default context (certificates and host names verified), built once."""
    return ssl.create_default_context()


def tls_for(url: str) -> ssl.SSLContext | None:
    """The context for a client of ``url``: none for plain HTTP (a fake Slack on
    loopback), where it would secure nothing and only make slack_sdk build a
    new urllib opener for every call (0.17 ms; with no context it uses urllib's
    one)."""
    return tls_context() if url.lower().startswith("https:") else None
