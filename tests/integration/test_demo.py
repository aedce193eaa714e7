"""``tickwise demo`` on a real broker, run as a new user runs it: the worker, the watchtower and
the feed each do their part, the summary shows the watchtower's live audit check intact and the
alerts it raised, and nothing it started outlives it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def _processes_naming(text: str) -> list[str]:
    """Command lines of the live processes that contain ``text`` (from /proc)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # the process ended while we looked
            continue
        if text in args:
            found.append(args)
    return found


@pytest.mark.timeout(600)  # three Python processes and a feed on a shared 2-core machine
def test_demo_summary_shows_the_watchtower_audit_check_intact(kafka_bootstrap: str) -> None:
    cmd = [sys.executable, "-m", "tickwise.streams.cli", "demo"]
    cmd += ["--bootstrap-servers", kafka_bootstrap, "--seconds", "5", "--rate", "300"]
    cmd += ["--kill-after", "600", "--console-port", "0", "--drain-timeout", "240"]
    env = {k: v for k, v in os.environ.items() if k != "TICKWISE_SASL_USERNAME"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=560, env=env)
    out = done.stdout
    assert done.returncode == 0, out[-4000:] + done.stderr[-2000:]

    prefix = re.search(r"topics created \(prefix '([^']+)'\)", out)
    assert prefix is not None, out[:2000]
    audit, decisions = f"{prefix[1]}audit", f"{prefix[1]}decisions"
    checked = re.search(
        rf"watchtower: checked (\d+) of (\d+) on {re.escape(audit)}, "
        rf"(\d+) of (\d+) on {re.escape(decisions)}",
        out,
    )
    assert checked is not None, out[-3000:]
    n_audit, of_audit, n_decisions, of_decisions = map(int, checked.groups())
    assert n_audit == of_audit > 0 and n_decisions == of_decisions > 0
    store = re.search(r"audit store \S+: (\d+) records from (\d+) messages", out)
    assert store is not None and int(store[2]) == of_audit
    assert "(the audit store's verify agrees)" in out
    assert "\n  audit chain: intact\n" in out
    raised = re.search(r"\n  alerts it raised: (.*)\n", out)
    assert raised is not None
    assert "AUDIT_" not in raised[1] and "DECISION_" not in raised[1]
    # the watchtower read the kill switch the demo pulled from the control topic
    assert "kill switches it saw on the control topic: global on" in out
    assert out.splitlines()[-1].startswith("demo OK: "), out[-500:]

    # the worker and the watchtower are gone with the demo
    assert _processes_naming(f"--topic-prefix {prefix[1]}") == []
