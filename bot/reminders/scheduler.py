"""The scheduler: APScheduler only ticks; the database decides.

Each tick, the process that holds the scheduler lease (a row with an expiry,
renewed every tick, taken over when it lapses) ends expired risk
acceptances, forgets what no longer needs keeping (handled requests, old
delivered messages), plans what is due into the outbox and dispatches it.
Any number of processes may run a scheduler; only the lease holder works, and
the outbox's unique key would stop a second plan anyway. APScheduler keeps no job
store of its own (nothing shared between processes).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial

from apscheduler.schedulers.background import BackgroundScheduler
from slack_sdk import WebClient
from sqlalchemy import Engine

from bot.config import Settings
from bot.poam.clock import Clock
from bot.reminders.dispatch import DispatchReport, Pacer, dispatch
from bot.reminders.expiries import end_risk_acceptances
from bot.reminders.planner import enqueue, plan, restated
from bot.store.engine import unit_of_work
from bot.store.outbox import FORGET_BATCH, forget_delivered, take_lease
from bot.store.replays import forget_handled

log = logging.getLogger(__name__)

LEASE_NAME = "scheduler"
TICK_SECONDS = 30
LEASE_TTL = timedelta(seconds=TICK_SECONDS * 3)
#: Enough to keep up with any workspace's sending, few enough to keep a tick short.
FORGET_BATCHES_PER_TICK = 10
#: How long ``poam-bot scheduler``, told to stop, waits for its send in flight
#: and its mark before it leaves anyway: less than ``serve``'s keeper waits
#: before it kills it (``bot.serve.CHILD_STOP_SECONDS``), and a platform (30 s).
STOP_SECONDS = 8.0


@dataclass
class TickReport:
    leader: bool
    expired: int = 0
    planned: int = 0
    dispatched: DispatchReport | None = None


class Scheduler:
    def __init__(self, *, engine: Engine, client: WebClient, settings: Settings, clock: Clock, pacer: Pacer | None = None) -> None:
        self.engine = engine
        self.client = client
        self.settings = settings
        self.clock = clock
        self.pacer = pacer or Pacer()
        self.holder = f"{uuid.uuid4().hex[:12]}"
        #: Set when told to stop: no send begins after it (:meth:`run_forever`).
        self.stopping = threading.Event()

    def tick(self) -> TickReport:
        """One round: lease, expiries (and handled requests no replay can match
        any more, old delivered messages), planning, dispatch. Safe to run
        anywhere, any time."""
        if not self._lead():
            return TickReport(leader=False)
        rules = self.settings.rules
        expired = len(end_risk_acceptances(self.engine, clock=self.clock, rules=rules).ended)
        with unit_of_work(self.engine) as session:
            forget_handled(session, now=self.clock.now())
        self._forget_delivered()
        try:
            planned = self._plan()
        except Exception:  # logged with its traceback; what is queued (a change's DMs, retries) still goes
            log.exception("planning reminders and digests failed; sending what is queued")
            planned = 0
        sent = dispatch(self.engine, self.client, clock=self.clock, pacer=self.pacer, still_leader=self._sending,
                        configured_admins=self.settings.poam_admins,
                        restate=partial(restated, clock=self.clock, rules=rules, default_tz=self.settings.timezone))
        return TickReport(leader=True, expired=expired, planned=planned, dispatched=sent)

    def _plan(self) -> int:
        """Plan what is due into the outbox; how many messages that added.
        Planning only reads (and may take a while): it must not hold SQLite's
        write lock; writing the outbox rows is one short transaction."""
        with unit_of_work(self.engine, read_only=True) as session:
            due = plan(session, clock=self.clock, rules=self.settings.rules, default_tz=self.settings.timezone)
        with unit_of_work(self.engine) as session:
            return enqueue(session, due, now=self.clock.now())

    def _forget_delivered(self) -> None:
        """Old sent and given-up messages out of the outbox, a batch per
        transaction, at most FORGET_BATCHES_PER_TICK batches a tick."""
        for _ in range(FORGET_BATCHES_PER_TICK):
            with unit_of_work(self.engine) as session:
                if forget_delivered(session, now=self.clock.now(), limit=FORGET_BATCH) < FORGET_BATCH:
                    return

    def _lead(self) -> bool:
        """Take or renew the lease; False when another live process holds it."""
        with unit_of_work(self.engine) as session:
            return take_lease(session, name=LEASE_NAME, holder=self.holder, now=self.clock.now(), ttl=LEASE_TTL)

    def _sending(self) -> bool:
        """Whether dispatch may claim and send one more row: not once told to stop, and while leading."""
        return not self.stopping.is_set() and self._lead()

    def _safe_tick(self) -> None:
        """The job APScheduler runs: a failed tick is logged and the next one retries."""
        if self.stopping.is_set():  # a tick due as the stop came
            return
        try:
            report = self.tick()
        except Exception:  # a tick must never kill the scheduler thread; the next tick retries
            log.exception("scheduler tick failed")
            return
        if report.leader and (report.planned or report.expired):
            log.info("tick: %s planned, %s risk acceptances ended, %s", report.planned, report.expired, report.dispatched)

    def _add_job(self, scheduler: BackgroundScheduler) -> None:
        scheduler.add_job(
            self._safe_tick, "interval", seconds=TICK_SECONDS, max_instances=1, coalesce=True, id="poam-tick",
            next_run_time=datetime.now(UTC),  # first tick at once, then every TICK_SECONDS
        )

    def start_background(self) -> BackgroundScheduler:
        """Tick in a thread of this process (``poam-bot serve``)."""
        scheduler = BackgroundScheduler(timezone="UTC")
        self._add_job(scheduler)
        scheduler.start()
        return scheduler

    def run_forever(self) -> None:
        """Tick until told to stop (``poam-bot scheduler``). SIGTERM (a stop, a
        redeploy; ``serve``'s keeper passes its own on) or SIGINT stops it
        between two sends: the one in flight is finished and marked sent, no
        other begins. Killed in between, it sent that message again after its
        restart. A tick not over within :data:`STOP_SECONDS` (Slack or the
        database slow to answer) is cut short, as a kill would."""
        # A handler only notes the signal: Event.set() takes a lock, and a second
        # signal (Ctrl-C's SIGINT, then the keeper's SIGTERM), whose handler runs
        # in the same thread, waited for it forever.
        told: list[int] = []
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda signum, _frame: told.append(signum))
        scheduler = self.start_background()
        while not told:
            time.sleep(0.5)
        self.stopping.set()
        log.info("stopping the scheduler once its tick is over")
        stopped = threading.Thread(target=scheduler.shutdown, daemon=True)  # waits for the tick
        stopped.start()
        stopped.join(STOP_SECONDS)
        if stopped.is_alive():
            log.warning("the scheduler's tick was not over %.0f s after it was told to stop; stopping anyway",
                        STOP_SECONDS)
            logging.shutdown()
            os._exit(1)  # its thread would keep the interpreter from exiting
