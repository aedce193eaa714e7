"""The worker rides through a SIGKILL and then a broker stop and start, on a private broker:
decisions equal the backtest's, nothing lost or duplicated (see ``fault_scenario``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fault_scenario import sigkill_then_broker_restart

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


# The scenario takes 3 to 4 minutes on a loaded two-core machine, more when a hung client call
# after the broker restart costs the transport its 45 s watchdog: past the suite's default.
@pytest.mark.timeout(900)
def test_sigkill_then_broker_restart_keeps_every_promise(tmp_path: Path) -> None:
    notes: list[str] = []
    outcome = sigkill_then_broker_restart(tmp_path, note=notes.append)
    assert outcome.problems == [], "\n".join(notes)
    assert outcome.decisions == outcome.expected
