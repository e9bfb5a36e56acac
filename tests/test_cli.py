"""``poam-bot`` from a shell: migrate, export, audit verify, and clear failures."""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import os
import sqlite3
import stat
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, text

from bot import cli
from bot.cli import main
from bot.interchange.fedramp import COLUMNS
from bot.poam import items, milestones, review
from bot.poam.actor import Actor, Role
from bot.poam.severity import Severity
from bot.poam.systems import Impact, add_system
from bot.reminders import subscriptions
from bot.store.engine import make_engine, unit_of_work
from bot.store.migrate import current_revision
from tests.conftest import ActorFactory


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No developer .env or POAM_* variable leaks into these runs."""
    monkeypatch.chdir(tmp_path)
    for name in ("DATABASE_URL", "POAM_DEADLINES", "POAM_ID_PREFIX", "POAM_TIMEZONE", "POAM_ADMINS"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def db_env(monkeypatch: pytest.MonkeyPatch, database_url: str) -> str:
    monkeypatch.setenv("DATABASE_URL", database_url)
    return database_url


def _populate(engine: Engine, alice: Actor, bob: Actor, admin: Actor) -> None:
    with unit_of_work(engine) as session:
        items.log_item(
            session, alice, title="=HYPERLINK(evil)", severity=Severity.CRITICAL,
            controls=["SI-2"], assets=["web-01"], cves=["CVE-2024-3094"], detected_on=date(2026, 11, 2),
        )
        add_system(session, admin, name="Payroll", impact=Impact.HIGH)
        items.log_item(session, alice, title="Weak TLS", severity=Severity.LOW, system_name="payroll")
    with unit_of_work(engine) as session:
        items.claim_item(session, bob, number=1)
        milestones.add_milestone(session, bob, number=1, description="Patch", due_on=date(2026, 11, 25))
        milestones.add_milestone(session, bob, number=1, description="Rescan", due_on=date(2026, 11, 28))
    with unit_of_work(engine) as session:
        milestones.move_milestone(
            session, bob, number=1, milestone=1, due_on=date(2026, 11, 27), reason="vendor patch slipped"
        )


def test_migrate_then_export_json_on_an_empty_database(db_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate"]) == 0
    capsys.readouterr()
    assert main(["export", "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["format"] == "poam-bot/export"
    assert document["version"] == 1
    assert document["items"] == []


def test_export_json_has_items_milestones_and_changes(
    db_env: str, engine: Engine, alice: Actor, bob: Actor, admin: Actor, capsys: pytest.CaptureFixture[str]
) -> None:
    _populate(engine, alice, bob, admin)
    assert main(["export"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert [item["id"] for item in document["items"]] == ["POAM-1", "POAM-2"]
    first = document["items"][0]
    assert first["owner"] == bob.user_id
    assert first["status"] == "in_progress"
    assert first["controls"] == ["SI-2"]
    assert first["scheduled_completion_on"] == "2026-12-02"
    assert [m["planned_due_on"] for m in first["milestones"]] == ["2026-11-25", "2026-11-28"]
    assert first["milestones"][0]["due_on"] == "2026-11-27"
    assert first["milestone_changes"] == [
        {
            "seq": 1, "milestone": 1, "kind": "update", "old_due_on": "2026-11-25",
            "new_due_on": "2026-11-27", "reason": "vendor patch slipped",
            "changed_by": bob.user_id, "changed_at": "2026-11-20T15:00:00+00:00",
        }
    ]
    assert document["items"][1]["system"]["name"] == "Payroll"

    assert main(["export", "--system", "payroll"]) == 0
    assert [i["id"] for i in json.loads(capsys.readouterr().out)["items"]] == ["POAM-2"]
    assert main(["export", "--team", "T9999"]) == 1  # a typo's export was empty, and passed for one
    assert capsys.readouterr().err.strip() == "poam-bot: There is no workspace T9999 in this database."


def test_an_export_is_of_one_moment(
    db_env: str, engine: Engine, make_actor: ActorFactory, alice: Actor, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A fix verified while the export reads: on PostgreSQL, where each of a
    reader's statements saw the database anew, the item (read first) still
    waited for verification while its request (read next) said verified."""
    vera = make_actor("U00000VERA", Role.VERIFIER)
    with unit_of_work(engine) as session:
        items.log_item(session, alice, title="Weak TLS", severity=Severity.LOW, owner_id=alice.user_id)
        review.submit_fix(session, alice, number=1, evidence="rescan clean")
    verified = []

    def verify_once_items_are_read(connection: Any, cursor: Any, statement: str, *_: Any) -> None:
        if not verified and "FROM items" in statement:
            verified.append(True)
            with unit_of_work(engine) as session:
                review.verify_fix(session, vera, number=1, note="rescanned")

    def watched_engine(url: str, **kwargs: Any) -> Engine:  # the export's own engine; no other gets the event
        made = make_engine(url, **kwargs)
        event.listen(made, "after_cursor_execute", verify_once_items_are_read)
        return made

    monkeypatch.setattr(cli, "make_engine", watched_engine)
    assert main(["export"]) == 0
    assert verified
    (item,) = json.loads(capsys.readouterr().out)["items"]
    (request,) = item["requests"]
    assert (item["status"], request["status"]) == ("pending_verification", "pending")
    assert main(["export"]) == 0
    (item,) = json.loads(capsys.readouterr().out)["items"]
    assert (item["status"], item["requests"][0]["status"]) == ("closed", "approved")


def test_audit_verify_reads_heads_and_events_of_one_moment(
    db_env: str, engine: Engine, alice: Actor, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A change committed between its read of the workspaces' heads and of their
    events was a false alarm on PostgreSQL: "not in the recorded chain"."""
    with unit_of_work(engine) as session:
        items.log_item(session, alice, title="Weak TLS", severity=Severity.LOW)
    changed = []

    def log_once_heads_are_read(connection: Any, cursor: Any, statement: str, *_: Any) -> None:
        if not changed and "FROM workspaces" in statement and "WHERE workspaces.team_id" in statement:  # a head
            changed.append(True)
            with unit_of_work(engine) as session:
                items.log_item(session, alice, title="Logged meanwhile", severity=Severity.LOW)

    def watched_engine(url: str, **kwargs: Any) -> Engine:  # the command's own engine; no other gets the event
        made = make_engine(url, **kwargs)
        event.listen(made, "after_cursor_execute", log_once_heads_are_read)
        return made

    monkeypatch.setattr(cli, "make_engine", watched_engine)
    assert main(["audit", "verify"]) == 0, capsys.readouterr().err
    assert changed and "chain intact" in capsys.readouterr().out


def test_export_csv_uses_the_fedramp_columns_and_formats(
    db_env: str, engine: Engine, alice: Actor, bob: Actor, admin: Actor, tmp_path: Path
) -> None:
    _populate(engine, alice, bob, admin)
    out = tmp_path / "poam.csv"
    assert main(["export", "--format", "csv", "-o", str(out)]) == 0
    assert out.read_bytes().startswith(codecs.BOM_UTF8 + b"POAM ID,")  # Excel reads it as UTF-8
    rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert tuple(rows[0][: len(COLUMNS)]) == COLUMNS
    first = dict(zip(rows[0], rows[1], strict=True))
    assert first["POAM ID"] == "POAM-1"
    assert first["Weakness Name"] == "'=HYPERLINK(evil)"  # never a live formula
    assert first["Original Risk Rating"] == "High"
    assert "Critical" in first["Comments"]
    assert first["Planned Milestones"] == "(01) 2026-11-25: Patch\n\n(02) 2026-11-28: Rescan"
    assert first["Milestone Changes"] == (
        "(01) Update 2026-11-27 : moved from 2026-11-25: vendor patch slipped"
    )
    assert first["CVE"] == "CVE-2024-3094"
    assert first["Status"] == "in_progress"
    assert len(rows) == 3


def test_audit_verify_passes_then_names_a_tampered_event(
    db_env: str, engine: Engine, alice: Actor, bob: Actor, admin: Actor, capsys: pytest.CaptureFixture[str]
) -> None:
    _populate(engine, alice, bob, admin)
    assert main(["audit", "verify"]) == 0
    out = capsys.readouterr().out
    assert "chain intact; its head is --anchor " in out
    anchor = out.split("--anchor ")[1].strip().rstrip(".")
    team, seq, head = anchor.split(":")
    assert (team, len(head)) == (alice.team_id, 64)
    assert main(["audit", "verify", "--anchor", f"{team}:{seq}:{head[:16]}"]) == 0  # a digest's shorter form
    assert main(["audit", "verify", "--anchor", f"{team}:{seq}:{'0' * 16}"]) == 1
    assert f"audit event #{seq} is not the event recorded outside the database" in capsys.readouterr().err
    assert main(["audit", "verify", "--anchor", "nonsense"]) == 1
    assert capsys.readouterr().err.strip().startswith("poam-bot: `nonsense` is not an audit anchor")
    # Another workspace's anchor was left unchecked beside --team: verify passed.
    assert main(["audit", "verify", "--team", team, "--anchor", f"T0OTHER01:{seq}:{'0' * 16}"]) == 1
    assert "An anchor names another workspace than --team" in capsys.readouterr().err
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE audit_events SET actor_id = 'U0000MALLORY' WHERE team_id = :t AND seq = 3"),
            {"t": alice.team_id},
        )
    assert main(["audit", "verify"]) == 1
    err = capsys.readouterr().err
    assert "audit event #3" in err and "altered" in err


def _recomputed(event: dict[str, Any]) -> str:
    """The hash README says an event carries, computed here without the bot's code."""
    content = {key: event[key] for key in ("prev", "team", "seq", "item", "actor", "action", "at", "details")}
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
                          .encode()).hexdigest()


def test_audit_export_gives_a_trail_an_assessor_can_check_alone(
    db_env: str, engine: Engine, alice: Actor, bob: Actor, admin: Actor, capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    _populate(engine, alice, bob, admin)
    assert main(["audit", "export"]) == 0
    trail = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [event["seq"] for event in trail] == list(range(1, len(trail) + 1)) and len(trail) >= 7
    assert all(event["hash"] == _recomputed(event) for event in trail)
    assert [event["prev"] for event in trail] == ["", *(event["hash"] for event in trail[:-1])]
    moved = next(event for event in trail if event["action"] == "milestone.moved")
    assert (moved["item_number"], moved["actor"], moved["details"]["reason"]) == (1, bob.user_id, "vendor patch slipped")

    assert main(["audit", "export", "--item", "POAM-2", "-o", str(tmp_path / "trail.jsonl")]) == 0
    assert "Exported 1 audit event(s)" in capsys.readouterr().err
    (only,) = [json.loads(line) for line in (tmp_path / "trail.jsonl").read_text(encoding="utf-8").splitlines()]
    assert (only["action"], only["item_number"], only["hash"]) == ("item.logged", 2, _recomputed(only))

    assert main(["audit", "export", "--item", "POAM-9", "-o", str(tmp_path / "trail.jsonl")]) == 1
    assert "There is no item POAM-9" in capsys.readouterr().err
    assert (tmp_path / "trail.jsonl").read_text(encoding="utf-8")  # a refused export leaves the file as it was
    assert main(["audit", "export", "--team", "T9999999"]) == 1
    assert "There is no workspace T9999999" in capsys.readouterr().err


def test_audit_export_is_utf8_whatever_the_terminal(
    db_env: str, engine: Engine, alice: Actor, capsys: pytest.CaptureFixture[str]
) -> None:
    with unit_of_work(engine) as session:
        items.log_item(session, alice, title="Café \x7f résumé ✓", severity=Severity.LOW)
    capsys.readouterr()
    sys.stdout.reconfigure(encoding="ascii")  # type: ignore[attr-defined]
    try:
        assert main(["audit", "export"]) == 0
    finally:
        sys.stdout.reconfigure(encoding="utf-8")  # type: ignore[attr-defined]
    (logged,) = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "item.logged" in line]
    assert logged["details"]["title"] == "Café \x7f résumé ✓" and logged["hash"] == _recomputed(logged)


def test_export_before_migrate_says_to_migrate(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sqlite3.connect(tmp_path / "new.db").close()  # a database, with no schema yet
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'new.db'}")
    assert main(["export"]) == 1
    assert "run `poam-bot migrate`" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("variable", "value"),
    [("DATABASE_URL", "nonsense"), ("POAM_DEADLINES", "high=abc"), ("POAM_TIMEZONE", "Mars/Olympus")],
)
def test_bad_setting_prints_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str, value: str
) -> None:
    """Run as a user would, in a fresh process: one line, exit 2, no traceback."""
    monkeypatch.setenv(variable, value)
    result = subprocess.run(
        [sys.executable, "-m", "bot", "migrate"], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_unreachable_database_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:1/nowhere")
    assert main(["migrate"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("poam-bot: database error:") and "\n" not in err


SAMPLES = Path(__file__).resolve().parent / "samples"


def test_import_a_scan_twice_then_export_every_format(
    db_env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scan = str(SAMPLES / "weekly.nessus")
    assert main(["import", scan, "--team", "T0001", "--dry-run"]) == 0
    assert "Dry run, nothing imported: 5 new, 0 updated, 0 unchanged, 3 skipped." in capsys.readouterr().out
    assert main(["import", scan, "--team", "T0001"]) == 0
    assert "Imported: 5 new" in capsys.readouterr().out
    assert main(["import", scan, "--dry-run"]) == 0  # the same file again: nothing new is seen
    assert "Dry run, nothing imported: 0 new, 0 updated, 5 unchanged" in capsys.readouterr().out
    assert main(["import", scan]) == 0  # the only workspace is the default
    assert "Imported: 0 new, 0 updated, 5 unchanged" in capsys.readouterr().out
    for fmt in ("json", "csv", "xlsx", "oscal"):
        out = tmp_path / f"poam.{fmt}"
        assert main(["export", "--format", fmt, "-o", str(out)]) == 0, fmt
        assert out.stat().st_size > 0
    assert "5 item(s)" in capsys.readouterr().err


def test_a_broken_file_imports_nothing_and_names_the_place(
    db_env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.csv"
    broken.write_text("title,severity,asset\nGood one,high,web-01\nBad one,extreme,web-02\n")
    assert main(["import", str(broken), "--team", "T0001"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("poam-bot: row 3") and "extreme" in err and "\n" not in err
    assert main(["export"]) == 0
    assert json.loads(capsys.readouterr().out)["items"] == []


def test_a_sarif_scan_imported_twice_creates_nothing_new(db_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    scan = str(SAMPLES / "codescan.sarif")
    assert main(["import", scan, "--team", "T0001"]) == 0
    first = capsys.readouterr().out
    assert "Imported: 8 new, 0 updated, 0 unchanged, 1 skipped." in first
    assert main(["import", scan, "--team", "T0001"]) == 0
    assert "Imported: 0 new, 0 updated, 8 unchanged, 1 skipped." in capsys.readouterr().out
    assert main(["export"]) == 0
    exported = json.loads(capsys.readouterr().out)["items"]
    assert len(exported) == 8
    assert all(item["source"] == "scan" and item["assets"] for item in exported)
    assert any(item["cves"] for item in exported)


# ---------------------------------------------------------------- bad input from the shell


def test_a_refused_export_leaves_the_file_it_was_to_replace_as_it_was(
    db_env: str, engine: Engine, alice: Actor, bob: Actor, admin: Actor, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _populate(engine, alice, bob, admin)
    out = tmp_path / "poam.xlsx"
    out.write_bytes(b"last week's workbook")
    for args in (["--format", "xlsx", "--system", "Nope"], ["--format", "json", "--team", "T0TYPO"],
                 ["--format", "csv", "--team", "lower case"], ["--format", "json", "--system", "Nope"]):
        assert main(["export", *args, "-o", str(out)]) == 1, args
        assert out.read_bytes() == b"last week's workbook", args
    errors = capsys.readouterr().err.splitlines()
    assert errors[0] == "poam-bot: There is no system called `Nope` in workspace T0001."
    assert errors[1] == "poam-bot: There is no workspace T0TYPO in this database."
    assert errors[2].startswith("poam-bot: `lower case` is not a Slack workspace")
    assert errors[3] == "poam-bot: There is no system called `Nope` in any workspace."
    out.chmod(0o600)  # kept private on purpose
    link = tmp_path / "latest.xlsx"
    link.symlink_to(out)
    assert main(["export", "--format", "xlsx", "-o", str(link)]) == 0
    assert out.read_bytes().startswith(b"PK") and link.is_symlink()  # written through the link
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_a_csv_names_no_workspace_so_a_database_of_several_needs_team(
    db_env: str, engine: Engine, alice: Actor, bob: Actor, admin: Actor, make_actor: ActorFactory, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Its rows of every workspace ran together, told apart by nothing."""
    _populate(engine, alice, bob, admin)
    with unit_of_work(engine) as session:
        items.log_item(session, make_actor("U0OTHER01", team="T0002"), title="Another workspace's weakness",
                       severity=Severity.LOW)
    out = tmp_path / "poam.csv"
    assert main(["export", "--format", "csv", "-o", str(out)]) == 1
    assert not out.exists()
    assert capsys.readouterr().err.startswith("poam-bot: Say which workspace to export (--team)")
    assert main(["export", "--format", "csv", "--team", "T0001", "-o", str(out)]) == 0
    assert "Another workspace" not in out.read_text(encoding="utf-8")
    assert main(["export", "--format", "json"]) == 0  # each item says whose it is
    assert {item["team_id"] for item in json.loads(capsys.readouterr().out)["items"]} == {"T0001", "T0002"}


def test_an_export_over_the_database_itself_is_refused(
    db_env: str, engine: Engine, alice: Actor, bob: Actor, admin: Actor, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`export -o poam.db` wrote the workbook over the POA&M, and said "Exported"."""
    if not db_env.startswith("sqlite"):
        pytest.skip("a PostgreSQL database is no file here")
    _populate(engine, alice, bob, admin)
    database = Path(db_env.removeprefix("sqlite:///"))
    kept = database.read_bytes()
    link = tmp_path / "link.db"
    link.symlink_to(database)
    for args in (["export", "--format", "xlsx"], ["audit", "export"]):
        for path in (database, link, Path(f"{database}-wal")):
            assert main([*args, "-o", str(path)]) == 1, (args, path)
            assert capsys.readouterr().err.strip() == (
                f"poam-bot: {path} is the database itself; write the export to another file.")
    assert database.read_bytes() == kept
    assert main(["audit", "verify"]) == 0


def test_a_command_on_a_mistyped_sqlite_path_creates_no_database_there(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It made an empty file there, which `poam-bot migrate` (as the message
    said) then made an empty POA&M."""
    typo = tmp_path / "poma.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{typo}")
    for args in (["export"], ["audit", "verify"], ["digest", "--channel", "C0123", "--dry-run"]):
        assert main(args) == 1, args
        assert capsys.readouterr().err.strip() == (
            f"poam-bot: There is no database at {typo}: check DATABASE_URL, or create one there with "
            "`poam-bot migrate`.")
    assert not typo.exists()
    assert main(["migrate"]) == 0 and typo.exists()


def test_an_export_failing_midway_leaves_the_file_and_one_into_a_pipe_is_written(
    db_env: str, engine: Engine, alice: Actor, bob: Actor, admin: Actor, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """A disk filling up midway left a broken workbook where last week's was;
    `-o /dev/fd/N` (a pipe: `-o >(gzip > x.gz)`) failed."""
    _populate(engine, alice, bob, admin)
    out = tmp_path / "poam.json"
    out.write_bytes(b"last week's export")

    def fills_the_disk(session: Any, stream: Any, **_: Any) -> Any:
        stream.write(b'{"format": "poam-bot/export", "items": [')
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patched:
        patched.setattr(cli, "export", fills_the_disk)
        assert main(["export", "-o", str(out)]) == 1
    assert out.read_bytes() == b"last week's export"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    assert "No space left on device" in capsys.readouterr().err
    assert main(["export", "-o", str(tmp_path / "nope" / "out.json")]) == 1  # the path as given, not a scratch file's
    assert capsys.readouterr().err.strip() == f"poam-bot: No such file or directory: {tmp_path / 'nope' / 'out.json'}"
    with monkeypatch.context() as patched:  # a file we may write, in a folder we may not
        patched.setattr(cli.tempfile, "NamedTemporaryFile", lambda **_: (_ for _ in ()).throw(PermissionError(13, "no")))
        assert main(["export", "-o", str(out)]) == 0
    assert [item["id"] for item in json.loads(out.read_bytes())["items"]] == ["POAM-1", "POAM-2"]
    read, write = os.pipe()
    try:
        assert main(["export", "-o", f"/dev/fd/{write}"]) == 0
    finally:
        os.close(write)
    with os.fdopen(read, "rb") as pipe:
        assert [item["id"] for item in json.loads(pipe.read())["items"]] == ["POAM-1", "POAM-2"]


def test_an_import_into_a_workspace_this_database_does_not_hold_is_refused_and_a_dry_run_writes_nothing(
    db_env: str, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    scan = str(SAMPLES / "weekly.nessus")
    assert main(["import", scan, "--team", "T0001", "--dry-run"]) == 0
    assert main(["audit", "verify"]) == 0
    assert "No workspaces in this database yet" in capsys.readouterr().out  # the dry run created none
    assert main(["import", scan, "--team", "T0001"]) == 0  # the first import of an empty database makes it
    capsys.readouterr()
    for args in (["--dry-run"], []):
        assert main(["import", scan, "--team", "T0TYPO", *args]) == 1
        assert capsys.readouterr().err.strip() == "poam-bot: There is no workspace T0TYPO in this database."
    assert main(["audit", "verify", "--team", "T0TYPO"]) == 1  # was "0 audit event(s), chain intact"
    assert main(["digest", "--channel", "C0123", "--team", "T0TYPO", "--dry-run"]) == 1
    assert capsys.readouterr().err.count("There is no workspace T0TYPO") == 2
    assert main(["audit", "verify"]) == 0
    assert capsys.readouterr().out.startswith("T0001: ")  # the one workspace, still alone


def test_remind_status_refuses_at_which_it_would_leave_unread(
    db_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["remind", "--status", "--at", "2026-11-20T09:00:00+00:00"]) == 1
    assert capsys.readouterr().err.strip() == (
        "poam-bot: --at goes with --dry-run: --status lists the messages as they stand now.")


def test_a_digest_of_a_channel_subscribed_in_two_workspaces_needs_team(
    db_env: str, engine: Engine, make_actor: ActorFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """A shared channel keeps its id in each workspace: the digest was one of them, either."""
    for team, title in (("T0001", "First workspace's weakness"), ("T0002", "Second workspace's weakness")):
        admin = make_actor("U0ADMIN01", Role.ADMIN, team=team)
        with unit_of_work(engine) as session:
            items.log_item(session, admin, title=title, severity=Severity.LOW)
            subscriptions.subscribe(session, admin, channel_id="C0SHARED1", weekday=None, post_at=None)
    assert main(["digest", "--channel", "C0SHARED1", "--dry-run"]) == 1
    assert capsys.readouterr().err.strip() == (
        "poam-bot: C0SHARED1 is subscribed in more than one workspace; pass --team to choose one.")
    assert main(["digest", "--channel", "C0SHARED1", "--team", "T0002", "--dry-run"]) == 0
    assert "--anchor T0002:" in capsys.readouterr().out  # the second workspace's trail


def test_our_own_json_and_oscal_exports_are_refused_as_imports_by_name(
    db_env: str, engine: Engine, alice: Actor, bob: Actor, admin: Actor, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _populate(engine, alice, bob, admin)
    for fmt in ("json", "oscal"):
        out = tmp_path / f"poam.{fmt}"
        assert main(["export", "--format", fmt, "-o", str(out)]) == 0
        assert main(["import", str(out), "--dry-run"]) == 1
        assert "is a JSON or OSCAL export of a POA&M, which is not imported" in capsys.readouterr().err


def test_remind_at_a_time_out_of_range_is_a_usage_error(db_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    for moment in ("9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+00:00"):
        with pytest.raises(SystemExit) as exited:
            main(["remind", "--dry-run", "--at", moment])
        assert exited.value.code == 2
        assert "give a time between the years 1990 and 2200" in capsys.readouterr().err


def test_a_database_made_by_a_newer_poam_bot_is_named_so(db_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A release rolled back: `migrate` ended in Alembic's traceback, and the
    other commands said to run it."""
    assert main(["migrate"]) == 0
    engine = make_engine(db_env)
    head = current_revision(engine)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'deadbeef0001'"))
    capsys.readouterr()
    try:
        for command in (["migrate"], ["export"], ["audit", "verify"]):
            assert main(command) == 1, command
            err = capsys.readouterr().err.strip()
            assert err.startswith("poam-bot: The database is at schema revision deadbeef0001, which this poam-bot "
                                  "does not know: a newer version made it."), err
            assert "\n" not in err
    finally:  # the PostgreSQL test database serves the tests after this one
        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = :head"), {"head": head})
        engine.dispose()


@pytest.mark.parametrize(("env_file", "variable"), [
    (b"POAM_CSP_NAME=Soci\xe9t\xe9\n", ".env"),  # Latin-1
    (None, "WEB_CONCURRENCY"),
])
def test_a_dot_env_not_in_utf8_and_a_bad_web_concurrency_are_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env_file: bytes | None, variable: str
) -> None:
    """Run as a user would, in a fresh process: dotenv's UnicodeDecodeError and
    gunicorn's ValueError (reading WEB_CONCURRENCY as it is imported) were tracebacks."""
    if env_file is not None:
        (tmp_path / ".env").write_bytes(env_file)
    else:
        monkeypatch.setenv("WEB_CONCURRENCY", "two")
    result = subprocess.run([sys.executable, "-m", "bot", "serve"], capture_output=True, text=True, cwd=tmp_path,
                            check=False, timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("poam-bot: configuration error:") and variable in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_an_import_reads_no_more_than_the_limit(
    db_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """/dev/zero, or a file of gigabytes, was read whole before the size was checked."""
    monkeypatch.setattr(cli, "MAX_IMPORT_BYTES", 1000)
    monkeypatch.setattr("bot.interchange.importing.MAX_IMPORT_BYTES", 1000)
    assert main(["migrate"]) == 0
    assert main(["import", "/dev/zero", "--team", "T0001", "--format", "csv"]) == 1
    assert capsys.readouterr().err.strip() == "poam-bot: file: is larger than the limit of 1,000 bytes"
