"""The CLI's tables (rich): plain, aligned and never wrapped at a pipe; coloured at a real
terminal (a pseudo-terminal here) unless NO_COLOR is set."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys

from support import ACTORS
from support import DEFINITIONS
from support import ROOT
from support import Cli

START = ["start", "mistrivsel_referral", "--birth-date", "2014-05-02", "--set",
         "severity=moderate", "--set", "consent_exchange=true", "--as", "dr.a", "--role", "gp",
         "--at", "2026-11-02T09:00"]
YELLOW = "\x1b[33m"  # a pending message


def at_terminal(url: str, *args: str, **env: str) -> str:
    """What the real CLI writes to a terminal 200 columns wide."""
    clean = {k: v for k, v in os.environ.items() if k not in {"NO_COLOR", "FORCE_COLOR"}}
    main, child = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "pathways", "--db", url, "--definitions", str(DEFINITIONS),
         "--actors", str(ACTORS), *args], stdin=child, stdout=child, stderr=child, cwd=ROOT,
        env={**clean, "TERM": "xterm-256color", "COLUMNS": "200", **env})
    os.close(child)
    chunks = []
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the terminal closes with the process
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(main)
    assert process.wait(timeout=60) == 0, b"".join(chunks)
    return b"".join(chunks).decode("utf-8")


def test_at_a_pipe_tables_are_aligned_plain_text_with_headers(run: Cli) -> None:
    short = run(*START, "--subject", "C-1").output.strip()
    long = run(*START, "--subject", "C-" + "7" * 62).output.strip()
    run("advance", short, "close", "--set", "outcome=no_need", "--as", "p", "--role", "ppr",
        "--at", "2026-11-03T10:00")
    lines = run("list").output.splitlines()
    assert lines[0].split() == ["instance", "pathway", "child", "state", "status"]
    assert len(lines) == 3  # rows wider than 80 columns are not wrapped
    assert max(len(line) for line in lines) > 80
    column = lines[0].index("state")
    assert {line[column:].split()[0] for line in lines[1:]} == {"closed", "referred"}
    assert any(long in line for line in lines)
    assert all(line == line.rstrip() for line in lines)
    outbox = run("outbox").output
    assert "\x1b" not in outbox
    assert outbox.splitlines()[0].split() == ["id", "status", "channel", "recipient", "subject"]
    assert run("outbox", "--status", "failed").output.strip() == "(outbox is empty)"


def test_at_a_terminal_rows_are_coloured_unless_no_color(db_url: str) -> None:
    Cli(db_url)(*START, "--subject", "C-1")
    coloured = at_terminal(db_url, "outbox")
    assert YELLOW in coloured
    assert "pending" in coloured
    plain = at_terminal(db_url, "outbox", NO_COLOR="1")
    assert "pending" in plain
    assert YELLOW not in plain


def test_report_shows_a_spinner_on_stderr_at_a_terminal_only(run: Cli) -> None:
    run(*START, "--subject", "C-1")
    shown = at_terminal(run.url, "report", "--from", "2026-11-01", "--to", "2026-12-31")
    assert "computing the report" in shown
    assert "computing" not in run("report", "--from", "2026-11-01", "--to", "2026-12-31").output


def test_a_listing_cut_at_its_limit_says_so_on_stderr(run: Cli) -> None:
    ids = [run(*START, "--subject", f"C-{n}").output.strip() for n in range(3)]
    every = [m["id"] for m in json.loads(run("outbox", "--json").stdout)]
    assert len(every) >= 3
    newest = json.loads(run("outbox", "--limit", "2", "--json").stdout)
    assert [m["id"] for m in newest] == every[-2:]  # the newest two, oldest first
    shown = run("outbox", "--limit", "2")
    assert [line.split()[0] for line in shown.stdout.splitlines()[1:]] == \
        [str(i) for i in every[-2:]]
    assert shown.stderr.strip() == "(the newest 2 messages shown; --limit N shows more)"
    assert run("outbox", "--limit", str(len(every))).stderr == ""
    listed = run("list", "--limit", "2")
    assert len(listed.stdout.splitlines()) == 3  # the header and two
    assert listed.stderr.strip() == "(the first 2 instances shown; --limit N shows more)"
    whole = run("list", "--limit", "3")
    assert whole.stderr == ""
    assert sorted(line.split()[0] for line in whole.stdout.splitlines()[1:]) == sorted(ids)
