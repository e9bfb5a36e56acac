"""``poam-bot serve`` as a newcomer runs it: HTTP under gunicorn, against the fake Slack."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import wait_for
from tests.fake_slack import FakeSlack
from tests.slack_driver import SIGNING_SECRET, SlackDriver

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


@pytest.fixture
def served(fake_slack: FakeSlack, tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    env = {
        **os.environ,
        "SLACK_BOT_TOKEN": "xoxb-serve-test",
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": fake_slack.base_url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'poam.db'}",
        "PORT": str(port),
    }
    env.pop("SLACK_APP_TOKEN", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _healthy(base + "/healthz") or process.poll() is not None, timeout=30)
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


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


def _children(pid: int) -> list[int]:
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
        except OSError:
            continue  # the process ended meanwhile
        if fields.get("PPid", "").strip() == str(pid):
            found.append(int(status.parent.name))
    return found


def _cores(pid: int) -> set[int]:
    """The cores ``pid`` may run on, from /proc (Cpus_allowed_list: ``0-1``, ``3``, ``0,2-3``)."""
    cores: set[int] = set()
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Cpus_allowed_list:"):
            for part in line.split(":", 1)[1].strip().split(","):
                low, _, high = part.partition("-")
                cores.update(range(int(low), int(high or low) + 1))
    return cores


def _start_workers(command: list[str], *, env: dict[str, str], cwd: Path, workers: int) -> subprocess.Popen[str]:
    process = subprocess.Popen(command, cwd=cwd, env={**env, "WEB_CONCURRENCY": str(workers)},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: len(_children(process.pid)) >= workers or process.poll() is not None, timeout=30)
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        wait_for(lambda: _healthy(f"http://127.0.0.1:{env['PORT']}/healthz"), timeout=30)
    except BaseException:
        process.terminate()
        process.wait(timeout=10)
        raise
    return process


def _serve_env(fake_slack: FakeSlack, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "SLACK_BOT_TOKEN": "xoxb-serve-test",
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": fake_slack.base_url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'poam.db'}",
        "PORT": str(_free_port()),
        **extra,
    }
    env.pop("SLACK_APP_TOKEN", None)
    return env


_TWO_CORES = pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2, reason="needs two cores to pin to"
)
_SERVE = [sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--no-scheduler"]


def _procfile_web(env: dict[str, str]) -> list[str]:
    """The Procfile's web line, as a platform runs it."""
    line = (Path(__file__).parents[2] / "Procfile").read_text().splitlines()[0].removeprefix("web: ")
    return [sys.executable, "-m", *line.replace("$PORT", env["PORT"]).replace("0.0.0.0", "127.0.0.1").split()]


@_TWO_CORES
@pytest.mark.parametrize("how", ["serve", "procfile"])
def test_each_worker_runs_on_a_core_of_its_own(how: str, fake_slack: FakeSlack, tmp_path: Path) -> None:
    env = _serve_env(fake_slack, tmp_path)
    if how == "procfile":
        subprocess.run([sys.executable, "-m", "bot", "migrate"], env=env, cwd=tmp_path, check=True, capture_output=True)
    process = _start_workers(_SERVE if how == "serve" else _procfile_web(env), env=env, cwd=tmp_path, workers=2)
    try:
        pinned = [_cores(pid) for pid in _children(process.pid)]
        assert all(len(cores) == 1 for cores in pinned), pinned
        assert len(set.union(*pinned)) == 2, pinned  # two workers, two different cores
        assert set.union(*pinned) <= os.sched_getaffinity(0)
        assert _cores(process.pid) == os.sched_getaffinity(0)  # the master stays free
    finally:
        process.terminate()
        process.wait(timeout=10)


@_TWO_CORES
def test_workers_stay_free_when_pinning_is_off(fake_slack: FakeSlack, tmp_path: Path) -> None:
    env = _serve_env(fake_slack, tmp_path, POAM_PIN_WORKERS="false")
    process = _start_workers(_SERVE, env=env, cwd=tmp_path, workers=2)
    try:
        assert [_cores(pid) for pid in _children(process.pid)] == [os.sched_getaffinity(0)] * 2
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_a_malformed_pin_setting_stops_gunicorn_with_one_line(fake_slack: FakeSlack, tmp_path: Path) -> None:
    env = _serve_env(fake_slack, tmp_path, POAM_PIN_WORKERS="sometimes")
    finished = subprocess.run(_procfile_web(env), env=env, cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert finished.returncode != 0
    assert "POAM_PIN_WORKERS" in finished.stderr and "Traceback" not in finished.stderr, finished.stderr
