"""``poam-bot serve``: Socket Mode when ``SLACK_APP_TOKEN`` is set, else HTTP under gunicorn."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from types import FrameType
from typing import Any

from gunicorn.app.base import BaseApplication
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk import WebClient

from bot import gunicorn_conf
from bot.app import build_watched_app, check_token, web_client
from bot.config import Settings, require_slack
from bot.poam.audit import head_breaks
from bot.poam.clock import SystemClock
from bot.reminders.scheduler import STOP_SECONDS, Scheduler
from bot.store.engine import dispose, make_engine, unit_of_work
from bot.store.migrate import require_current, upgrade
from bot.tls import tls_for
from bot.web import from_settings

log = logging.getLogger(__name__)
#: ``poam-bot scheduler``: in HTTP mode, run by a keeper process that starts it again when it stops.
SCHEDULER_COMMAND = [sys.executable, "-m", "bot", "scheduler"]
#: Pauses before the scheduler is started again, longer while it keeps stopping soon after it started.
RESTART_PAUSES = (1.0, 5.0, 30.0, 60.0)
#: A scheduler that ran this long before it stopped was not failing at start: the pauses begin again.
STEADY_SECONDS = 300.0
#: How long the keeper waits for the scheduler to stop (it finishes its send in flight
#: first, for up to STOP_SECONDS) before it kills it; serve waits for the keeper longer.
CHILD_STOP_SECONDS = STOP_SECONDS + 2
KEEPER_STOP_SECONDS = CHILD_STOP_SECONDS + 5
#: How often the keeper looks whether it was told to stop while it waits.
KEEPER_POLL_SECONDS = 0.5


def prepare_database(settings: Settings) -> None:
    """SQLite is migrated on start (one machine, one file); PostgreSQL must be
    migrated by ``poam-bot migrate`` (the Procfile's release step) first.
    A workspace whose audit trail does not end where its recorded head says is
    logged (changes there are refused until someone has looked)."""
    engine = make_engine(settings.database_url)
    try:
        if engine.dialect.name == "sqlite":
            upgrade(engine)
        else:
            require_current(engine)
        with unit_of_work(engine, read_only=True, snapshot=True) as session:  # heads and events of one moment
            for broken in head_breaks(session):
                log.error("%s: run `poam-bot audit verify` and restore a consistent copy of the database", broken)
    finally:
        dispose(engine)  # before the fork: no checkpoint thread may hold SQLite's locks


def make_scheduler(settings: Settings) -> Scheduler:
    return Scheduler(
        engine=make_engine(settings.database_url), client=web_client(settings), settings=settings, clock=SystemClock()
    )


def run_scheduler(settings: Settings, *, checked: bool = False) -> None:
    """``poam-bot scheduler``: ticks until stopped. ``checked``: the caller
    (``serve``, for its child) has run :func:`prepare_database` already, whose
    log lines would otherwise come twice."""
    require_slack(settings)
    if not checked:
        prepare_database(settings)
    make_scheduler(settings).run_forever()


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, options: dict[str, Any]) -> None:
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return from_settings()


def serve(settings: Settings, *, host: str = "0.0.0.0", scheduler: bool = True) -> None:
    """Run until stopped; with ``scheduler`` reminders and digests tick too.

    Socket Mode ticks in a thread of this process. HTTP mode runs the
    scheduler as a child process beside gunicorn, through a keeper that
    starts it again when it stops (:func:`keep_scheduling`): gunicorn forks
    its workers, and forking a process that has threads running can leave a
    child deadlocked on a lock one of them held.
    """
    require_slack(settings)
    prepare_database(settings)
    if settings.slack_app_token is not None:
        app, _ = build_watched_app(settings)  # no health check in Socket Mode: the watch's log says when stuck
        if scheduler:  # after the app, which checks the token: no ticking with a token Slack refuses
            make_scheduler(settings).start_background()
        SocketModeHandler(
            app,
            settings.slack_app_token.get_secret_value(),
            web_client=WebClient(base_url=settings.slack_api_url, ssl=tls_for(settings.slack_api_url)),
        ).start()
        return
    check_token(settings)
    ticker = subprocess.Popen([*SCHEDULER_COMMAND, "--database-checked", "--keep-running"]) if scheduler else None

    def stop_ticker(_server: object) -> None:
        if ticker is not None and ticker.poll() is None:
            ticker.terminate()
            ticker.wait(timeout=KEEPER_STOP_SECONDS)

    try:
        _Gunicorn(
            {
                "bind": f"{host}:{settings.port}",
                "workers": settings.web_concurrency,
                **gunicorn_conf.settings(),
                "accesslog": "-",
                "on_exit": stop_ticker,
            }
        ).run()
    finally:  # gunicorn failing to start (its port taken) exits without on_exit: no scheduler left behind
        stop_ticker(None)  # (a worker leaving passes here too: to it the ticker is no child, poll() is not None)


class _Keeper:
    """The scheduler's keeper: its child, and whether it was told to stop.
    Its signal handler raises nothing and may come at any point, twice:
    a stop that cut the keeper's own stopping short left its child running."""

    def __init__(self) -> None:
        self.child: subprocess.Popen[bytes] | None = None
        self.stopping = False

    def stop(self, _signal: int, _frame: FrameType | None) -> None:
        """SIGTERM or SIGINT: stop, and pass it on."""
        self.stopping = True
        if self.child is not None and self.child.poll() is None:
            self.child.terminate()

    def run(self, command: list[str]) -> int | None:
        """Start ``command`` and wait for it to end; its exit status, or None once told to stop."""
        self.child = subprocess.Popen(command)
        if self.stopping:  # told between the fork and here, when the handler saw no child
            self.child.terminate()
        while not self.stopping:
            try:
                return self.child.wait(timeout=KEEPER_POLL_SECONDS)
            except subprocess.TimeoutExpired:
                continue
        return None

    def pause(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stopping and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, KEEPER_POLL_SECONDS))

    def stop_child(self) -> None:
        """Stop the child, killed when it does not stop within :data:`CHILD_STOP_SECONDS`."""
        child = self.child
        if child is None or child.poll() is not None:
            return
        child.terminate()
        try:
            child.wait(timeout=CHILD_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def keep_scheduling(command: list[str]) -> None:
    """Run the scheduler ``command`` and start it again whenever it stops,
    until this process is told to stop (SIGTERM, SIGINT), which it passes on.

    ``serve`` starts this beside gunicorn, whose arbiter reaps any child that
    dies without a word: a scheduler killed (by the OOM killer, say) left
    reminders, digests, departures and every retry unsent, while the health
    check saw the web side well. (The Procfile's worker is kept running by
    its platform.)"""
    keeper = _Keeper()
    signal.signal(signal.SIGTERM, keeper.stop)
    signal.signal(signal.SIGINT, keeper.stop)
    quick_stops = 0
    while not keeper.stopping:
        started = time.monotonic()
        code = keeper.run(command)
        if keeper.stopping:
            break
        quick_stops = 0 if time.monotonic() - started >= STEADY_SECONDS else quick_stops + 1
        pause = RESTART_PAUSES[min(max(quick_stops - 1, 0), len(RESTART_PAUSES) - 1)]
        log.error("the scheduler stopped (exit status %s); starting it again in %.0f s", code, pause)
        keeper.pause(pause)
    keeper.stop_child()
