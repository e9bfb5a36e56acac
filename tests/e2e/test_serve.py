"""``poam-bot serve`` as a newcomer runs it: HTTP under gunicorn, against the fake Slack."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from bot.poam.actor import Actor, Rules
from bot.poam.clock import SystemClock
from bot.poam.items import log_item
from bot.poam.severity import Severity
from bot.poam.systems import ensure_workspace
from bot.store.engine import dispose, make_engine, unit_of_work
from bot.store.migrate import upgrade
from bot.web import MAX_BODY_BYTES
from tests.e2e.conftest import wait_for
from tests.fake_slack import FakeSlack
from tests.slack_driver import SIGNING_SECRET, SlackDriver, sign
from tests.tcp_proxy import CuttableProxy

ALICE = "U00000ALICE"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def _serve_env(fake_slack: FakeSlack, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "SLACK_BOT_TOKEN": "xoxb-serve-test",
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": fake_slack.base_url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'poam.db'}",
        "PORT": str(_free_port()),
        "WEB_CONCURRENCY": "2",
    }
    env.pop("SLACK_APP_TOKEN", None)
    env.pop("POAM_PIN_WORKERS", None)
    return {**env, **extra}


def _stop(process: subprocess.Popen[str]) -> str:
    """Stop gunicorn (it stops its workers); what it printed."""
    if process.poll() is None:
        process.terminate()
    try:
        output, _ = process.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate(timeout=15)
    return output or ""


@pytest.fixture
def served(fake_slack: FakeSlack, tmp_path: Path) -> Iterator[str]:
    env = _serve_env(fake_slack, tmp_path, WEB_CONCURRENCY="1")
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    base = f"http://127.0.0.1:{env['PORT']}"
    try:
        wait_for(lambda: _healthy(base + "/healthz") or process.poll() is not None, timeout=30)
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        yield base
    finally:
        _stop(process)


def test_a_new_user_logs_claims_plans_and_shows(served: str, fake_slack: FakeSlack) -> None:
    slack = SlackDriver(served + "/slack/events", team_id=fake_slack.team_id, response_url=fake_slack.response_url())
    logged = slack.command('log Admin console reachable from the internet sev:high control:AC-17', user=ALICE)
    assert logged.status == 200 and "Logged *POAM-1*" in logged.text, logged.body
    claimed = slack.command("claim POAM-1", user=ALICE)
    assert "You now own *POAM-1*" in claimed.text, claimed.body
    added = slack.command('milestone POAM-1 add "Restrict the console to the VPN" due:+7d', user=ALICE)
    assert "Added *M1* to *POAM-1*" in added.text, added.body
    shown = slack.command("show poam-1", user=ALICE)
    assert "Restrict the console to the VPN" in shown.text and "Admin console reachable" in shown.text
    posts = wait_for(lambda: len(fake_slack.calls_to("chat.postMessage")) >= 2 and fake_slack.calls_to("chat.postMessage"))
    assert "logged *POAM-1*" in posts[0].params["text"]
    assert posts[1].params["thread_ts"] == "1700000000.000001"  # the claim went into the item's thread


# ------------------------------------------------------------------ workers and cores


def _status(pid: int) -> dict[str, str]:
    """/proc/PID/status as a dict; empty once the process is gone."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    return {key: value.strip() for key, _, value in (line.partition(":") for line in lines)}


def _workers(master: int) -> list[int]:
    """The live children of ``master`` (gunicorn's workers)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        status = _status(int(entry.name))
        if status.get("PPid") == str(master) and not status.get("State", "").startswith("Z"):
            found.append(int(entry.name))
    return found


def _cores(pid: int) -> set[int]:
    """The cores ``pid`` may run on (Cpus_allowed_list: ``0-1``, ``3``, ``0,2-3``)."""
    cores: set[int] = set()
    for part in filter(None, _status(pid).get("Cpus_allowed_list", "").split(",")):
        low, _, high = part.partition("-")
        cores.update(range(int(low), int(high or low) + 1))
    return cores


def _two_workers_up(process: subprocess.Popen[str], env: dict[str, str], settled: Callable[[list[int]], bool]) -> list[int]:
    """Wait until gunicorn serves with two workers that ``settled`` accepts; their pids."""
    def ready() -> list[int] | None:
        if process.poll() is not None:
            raise AssertionError(f"gunicorn exited with {process.returncode}:\n{_stop(process)}")
        workers = _workers(process.pid)
        return workers if len(workers) == 2 and settled(workers) else None

    workers = wait_for(ready, timeout=30)
    wait_for(lambda: _healthy(f"http://127.0.0.1:{env['PORT']}/healthz"), timeout=30)
    return workers


_TWO_CORES = pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2, reason="needs two cores to pin to"
)
_SERVE = [sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--no-scheduler"]


def _procfile_web(env: dict[str, str]) -> list[str]:
    """The Procfile's web line, as a platform runs it."""
    line = (Path(__file__).parents[2] / "Procfile").read_text().splitlines()[0].removeprefix("web: ")
    return [sys.executable, "-m", *line.replace("$PORT", env["PORT"]).replace("0.0.0.0", "127.0.0.1").split()]


def _start(how: str, env: dict[str, str], tmp_path: Path) -> subprocess.Popen[str]:
    if how == "procfile":  # the Procfile's release step migrates first
        subprocess.run([sys.executable, "-m", "bot", "migrate"], env=env, cwd=tmp_path, check=True, capture_output=True)
    command = _SERVE if how == "serve" else _procfile_web(env)
    return subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@_TWO_CORES
@pytest.mark.parametrize("how", ["serve", "procfile"])
def test_with_pinning_on_each_worker_runs_on_a_core_of_its_own(how: str, fake_slack: FakeSlack, tmp_path: Path) -> None:
    env = _serve_env(fake_slack, tmp_path, POAM_PIN_WORKERS="true")
    process = _start(how, env, tmp_path)
    try:
        workers = _two_workers_up(process, env, lambda pids: all(len(_cores(pid)) == 1 for pid in pids))
        pinned = [_cores(pid) for pid in workers]
        assert len(pinned[0] | pinned[1]) == 2, pinned  # two workers, two different cores
        assert pinned[0] | pinned[1] <= os.sched_getaffinity(0)
        assert _cores(process.pid) == os.sched_getaffinity(0)  # the master stays free
    finally:
        _stop(process)


@_TWO_CORES
@pytest.mark.parametrize("how", ["serve", "procfile"])
def test_by_default_workers_run_on_any_core(how: str, fake_slack: FakeSlack, tmp_path: Path) -> None:
    env = _serve_env(fake_slack, tmp_path)
    process = _start(how, env, tmp_path)
    try:
        workers = _two_workers_up(process, env, lambda pids: True)
        assert [_cores(pid) for pid in workers] == [os.sched_getaffinity(0)] * 2
    finally:
        _stop(process)


def test_a_malformed_pin_setting_stops_gunicorn_with_one_line(fake_slack: FakeSlack, tmp_path: Path) -> None:
    # One worker: when several fail to boot at once, gunicorn's own halt can race with itself.
    env = _serve_env(fake_slack, tmp_path, POAM_PIN_WORKERS="sometimes", WEB_CONCURRENCY="1")
    finished = subprocess.run(_procfile_web(env), env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert finished.returncode == 3, finished.stderr  # gunicorn's "worker failed to boot": the master halts
    assert "poam-bot: POAM_PIN_WORKERS: " in finished.stderr and "Traceback" not in finished.stderr, finished.stderr


# ------------------------------------------------------------------ start-up checks


def _serve_logged(env: dict[str, str], tmp_path: Path) -> tuple[subprocess.Popen[str], Path]:
    """``serve`` started in ``tmp_path``, writing to a log file; returned once
    its scheduler has started (it logs so after its own start-up), or serve stopped."""
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        process = subprocess.Popen([sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1"], cwd=tmp_path,
                                   env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: "Scheduler started" in log_path.read_text() or process.poll() is not None, timeout=30)
    except BaseException:
        _stop(process)
        raise
    return process, log_path


def test_a_broken_audit_head_is_logged_once_by_serve_not_again_by_its_scheduler(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    """``serve`` checks the database at start and logs each workspace whose trail
    does not end at its recorded head; the scheduler child it starts does not
    check (and log) it all again."""
    env = _serve_env(fake_slack, tmp_path, WEB_CONCURRENCY="1")
    engine = make_engine(env["DATABASE_URL"])
    try:
        upgrade(engine)
        alice = Actor(team_id=fake_slack.team_id, user_id=ALICE, roles=frozenset(), tz=ZoneInfo("UTC"),
                      clock=SystemClock(), rules=Rules())
        with unit_of_work(engine) as session:
            ensure_workspace(session, alice)
            log_item(session, alice, title="Admin console reachable from the internet", severity=Severity.HIGH)
        with engine.begin() as connection:
            connection.execute(text("UPDATE workspaces SET audit_head = 'x'"))
    finally:
        dispose(engine)
    process, log_path = _serve_logged(env, tmp_path)
    try:
        assert _healthy(f"http://127.0.0.1:{env['PORT']}/healthz")
    finally:
        _stop(process)
    output = log_path.read_text()
    assert "Scheduler started" in output, output
    broken = [line for line in output.splitlines() if "run `poam-bot audit verify`" in line]
    assert len(broken) == 1, output
    assert f"workspace {fake_slack.team_id}: audit event" in broken[0]


def _schedulers_started_in(folder: Path) -> list[int]:
    """Live ``poam-bot scheduler`` processes whose working directory is ``folder`` (``serve``'s children)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if b"scheduler" in command and cwd == str(folder) and not _status(int(entry.name)).get("State", "").startswith("Z"):
            found.append(int(entry.name))
    return found


def test_a_scheduler_that_dies_is_started_again_and_stopped_with_serve(fake_slack: FakeSlack, tmp_path: Path) -> None:
    """gunicorn's arbiter reaps a child that dies without a word: a scheduler
    killed (by the OOM killer, say) sent nothing more, while /healthz said
    all was well."""
    env = _serve_env(fake_slack, tmp_path, WEB_CONCURRENCY="1")
    process, log_path = _serve_logged(env, tmp_path)
    try:
        (ticking,) = [pid for pid in _schedulers_started_in(tmp_path)
                      if b"--keep-running" not in Path(f"/proc/{pid}/cmdline").read_bytes()]
        os.kill(ticking, signal.SIGKILL)
        wait_for(lambda: log_path.read_text().count("Scheduler started") == 2 or process.poll() is not None,
                 timeout=30)
        assert process.poll() is None
        assert "the scheduler stopped (exit status -9); starting it again" in log_path.read_text()
    finally:
        _stop(process)
    wait_for(lambda: _schedulers_started_in(tmp_path) == [], timeout=15)  # neither keeper nor scheduler left


def test_the_schedulers_keeper_told_twice_to_stop_still_stops_the_scheduler(tmp_path: Path) -> None:
    """A second stop (serve's SIGTERM after Ctrl-C's SIGINT) cut short the
    keeper's wait for its scheduler: the keeper left with a traceback, and
    the scheduler, orphaned, went on sending."""
    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(120)"
    keeper_code = ("import sys; import bot.serve as serve; serve.CHILD_STOP_SECONDS = 1; "
                   f"serve.keep_scheduling([sys.executable, '-c', {stubborn!r}])")
    keeper = subprocess.Popen([sys.executable, "-c", keeper_code], cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    scheduler = None
    try:
        assert keeper.stdout is not None and keeper.stdout.readline().strip() == "up"
        (scheduler,) = _workers(keeper.pid)
        keeper.send_signal(signal.SIGINT)
        time.sleep(0.2)
        keeper.send_signal(signal.SIGTERM)
        assert keeper.wait(timeout=15) == 0
        assert _status(scheduler) == {}  # killed, once it would not stop, and reaped
    finally:
        for pid in (keeper.pid, scheduler):
            if pid is not None and _status(pid):
                os.kill(pid, signal.SIGKILL)


def test_serve_that_cannot_bind_its_port_leaves_no_scheduler_behind(fake_slack: FakeSlack, tmp_path: Path) -> None:
    """gunicorn gives up on a port in use through sys.exit, without its on_exit
    hook: the scheduler child serve had started went on sending reminders."""
    env = _serve_env(fake_slack, tmp_path, WEB_CONCURRENCY="1")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", int(env["PORT"])))
        taken.listen()
        finished = subprocess.run([sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1"], cwd=tmp_path,
                                  env=env, capture_output=True, text=True, timeout=90)
    assert finished.returncode != 0, finished.stderr
    assert _schedulers_started_in(tmp_path) == []


def test_socket_mode_with_a_token_slack_refuses_is_one_line_and_ticks_nothing(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    env = _serve_env(fake_slack, tmp_path, SLACK_APP_TOKEN="xapp-1-revoked")
    fake_slack.fail("auth.test", error="invalid_auth", times=5)
    finished = subprocess.run([sys.executable, "-m", "bot", "serve"], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=60)
    assert finished.returncode == 1, finished.stderr
    assert "Traceback" not in finished.stderr, finished.stderr
    assert finished.stderr.strip().splitlines()[-1].startswith("poam-bot: Slack error:"), finished.stderr
    assert "Scheduler started" not in finished.stderr


def test_http_mode_with_a_token_slack_refuses_is_one_line_and_ticks_nothing(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    """A token pasted wrong: exit 3 after a page of gunicorn's traceback."""
    env = _serve_env(fake_slack, tmp_path)
    fake_slack.fail("auth.test", error="invalid_auth", times=5)
    finished = subprocess.run([sys.executable, "-m", "bot", "serve"], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=60)
    assert finished.returncode == 1, finished.stderr
    assert "Traceback" not in finished.stderr, finished.stderr
    assert finished.stderr.strip().splitlines()[-1] == (
        "poam-bot: Slack refuses the bot token (SLACK_BOT_TOKEN): invalid_auth")
    assert "Scheduler started" not in finished.stderr


def test_serve_starts_when_slack_fails_to_answer_its_token_check_for_a_moment(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    """Not the token's fault: a 5xx is no refusal (it stopped serve, saying the token was refused)."""
    fake_slack.fail("auth.test", status=500, times=3)
    env = _serve_env(fake_slack, tmp_path, WEB_CONCURRENCY="1")
    process = subprocess.Popen(_SERVE, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    try:
        wait_for(lambda: _healthy(f"http://127.0.0.1:{env['PORT']}/healthz") or process.poll() is not None,
                 timeout=30)
        assert process.poll() is None
    finally:
        output = _stop(process)
    assert "could not check the bot token with Slack (internal_error); starting anyway" in output, output


@pytest.mark.parametrize(("problem", "said"), [
    ("no schema", "poam-bot: The database has no POA&M schema yet"),
    ("no token", "poam-bot: configuration error: SLACK_BOT_TOKEN: not set"),
    ("token refused", "poam-bot: Slack refuses the bot token (SLACK_BOT_TOKEN): invalid_auth"),
])
def test_the_procfiles_gunicorn_stops_with_one_line_on_what_it_cannot_serve_with(
    fake_slack: FakeSlack, tmp_path: Path, problem: str, said: str
) -> None:
    """Its workers built the bot at the first request: with no schema /healthz
    said ok and /poam "Something went wrong"; with no token every request
    was a 500 with a traceback."""
    env = _serve_env(fake_slack, tmp_path, WEB_CONCURRENCY="1")
    if problem != "no schema":
        engine = make_engine(env["DATABASE_URL"])
        upgrade(engine)
        dispose(engine)
    if problem == "no token":
        env["SLACK_BOT_TOKEN"] = ""
    if problem == "token refused":
        fake_slack.fail("auth.test", error="invalid_auth", times=5)
    finished = subprocess.run(_procfile_web(env), env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert finished.returncode == 3, finished.stderr  # gunicorn's "worker failed to boot": the master halts
    assert said in finished.stderr and "Traceback" not in finished.stderr, finished.stderr


def test_the_procfiles_gunicorn_logs_at_the_level_set(fake_slack: FakeSlack, tmp_path: Path) -> None:
    """POAM_LOG_LEVEL was read by poam-bot alone: the web process logged
    nothing of the bot's but warnings."""
    env = _serve_env(fake_slack, tmp_path, WEB_CONCURRENCY="1", POAM_LOG_LEVEL="DEBUG")
    engine = make_engine(env["DATABASE_URL"])
    upgrade(engine)
    dispose(engine)
    process = subprocess.Popen(_procfile_web(env), env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: _healthy(f"http://127.0.0.1:{env['PORT']}/healthz") or process.poll() is not None,
                 timeout=30)
    finally:
        output = _stop(process)
    assert "DEBUG slack_sdk.web.base_client: Sending a request" in output, output  # its level, its format


def test_the_procfiles_gunicorn_serves_when_its_database_or_slack_does_not_answer_at_start(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    """What is down for a moment stops nothing: /healthz says what is wrong."""
    env = _serve_env(fake_slack, tmp_path, WEB_CONCURRENCY="1",
                     DATABASE_URL=f"sqlite:///{tmp_path / 'not-yet' / 'poam.db'}")
    fake_slack.fail("auth.test", status=503, times=3)
    process = subprocess.Popen(_procfile_web(env), env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: _http_status(f"http://127.0.0.1:{env['PORT']}/healthz") == 503 or process.poll() is not None,
                 timeout=30)
        assert process.poll() is None
    finally:
        output = _stop(process)
    assert "the database did not answer as the worker started" in output, output


def _http_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except OSError:
        return None


# ------------------------------------------------------------------ Slack away, odd requests


@pytest.mark.parametrize("how", ["serve", "procfile"])
def test_a_worker_started_while_slack_does_not_answer_serves(how: str, fake_slack: FakeSlack, tmp_path: Path) -> None:
    """Building the bot asked Slack (Bolt's auth.test): a worker started while
    Slack did not answer failed to boot and gunicorn's master exited (serve),
    or every request, /healthz too, had its connection closed (the Procfile's)."""
    slack_side = CuttableProxy("127.0.0.1", urlsplit(fake_slack.base_url).port or 0)
    slack_side.cut()
    env = _serve_env(fake_slack, tmp_path, WEB_CONCURRENCY="1", SLACK_API_URL=f"http://127.0.0.1:{slack_side.port}/api/")
    process = _start(how, env, tmp_path)
    base = f"http://127.0.0.1:{env['PORT']}"
    try:
        wait_for(lambda: _http_status(base + "/healthz") == 200 or process.poll() is not None, timeout=30)
        assert process.poll() is None
        slack_side.restore()  # Slack is back: the bot asks it who it is at the first request
        slack = SlackDriver(base + "/slack/events", team_id=fake_slack.team_id, response_url=fake_slack.response_url())
        assert "Logged *POAM-1*" in slack.command("log Admin console reachable sev:high", user=ALICE).text
    finally:
        output = _stop(process)
        slack_side.close()
    assert "could not reach Slack to check the bot token" in output, output


def _chunked_post(base: str, body: bytes, *, signed: bool = True) -> tuple[int, str]:
    """``body`` POSTed to the bot in chunks (Transfer-Encoding: chunked, no Content-Length)."""
    stamp = int(time.time())
    connection = http.client.HTTPConnection(urlsplit(base).netloc, timeout=10)
    try:
        connection.request("POST", "/slack/events", body=iter([body[:100], body[100:]]), encode_chunked=True,
                           headers={"Content-Type": "application/x-www-form-urlencoded",
                                    "X-Slack-Request-Timestamp": str(stamp),
                                    "X-Slack-Signature": sign(body.decode(), stamp) if signed else "v0=0"})
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def test_a_chunked_request_is_read_whole_up_to_the_cap(served: str, fake_slack: FakeSlack) -> None:
    """Bolt's WSGI adapter reads Content-Length bytes only: a signed request
    sent in chunks was read as empty, and refused as unsigned."""
    slack = SlackDriver(served + "/slack/events", team_id=fake_slack.team_id, response_url=fake_slack.response_url())
    status, answer = _chunked_post(served, slack.command_body("log Sent in chunks sev:low", user=ALICE).encode())
    assert status == 200 and "Logged *POAM-1*" in answer, answer
    assert _chunked_post(served, b"x" * (MAX_BODY_BYTES + 1), signed=False) == (413, "request too large\n")


def test_a_procfile_gunicorn_with_no_workers_stops_with_one_line(fake_slack: FakeSlack, tmp_path: Path) -> None:
    """gunicorn reads WEB_CONCURRENCY itself: with 0 it listened, started no
    worker and answered nothing, saying nothing."""
    env = _serve_env(fake_slack, tmp_path, WEB_CONCURRENCY="0")
    finished = subprocess.run(_procfile_web(env), env=env, cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert finished.returncode == 2, finished.stderr
    assert finished.stderr.strip().splitlines()[-1] == "poam-bot: WEB_CONCURRENCY: 0 worker processes; use 1 to 64"
    assert "Traceback" not in finished.stderr, finished.stderr
