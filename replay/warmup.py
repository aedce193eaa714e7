"""An event-time warm-up for a backtest: the model learns, nothing trades, nothing is measured.

The model already refuses to signal before ``model.warmup_labels`` labels; a backtest may also
ask for a span of event time (``--warmup 2h``). It is applied as a global kill switch, on from
the first tick and off ``warmup`` later, both with event times: decisions in that span are
still taken and audited, rejected with ``KILL_SWITCH``, exactly as a live deployment under the
same commands would take them (and the audit trail records them, so ``replay-check`` and
``--controls`` reproduce them). The report starts at the first decision after it.
"""

from __future__ import annotations

from tickwise.replay.report import iso_utc
from tickwise.schemas.decisions import ControlCommand
from tickwise.streams.operators.control import GLOBAL


def warmup_commands(first_ts_ns: int, warmup_ns: int) -> list[ControlCommand]:
    """The kill switch on at ``first_ts_ns`` and off ``warmup_ns`` later (event times).

    Examples
    --------
    >>> [c.command for c in warmup_commands(0, 10**9)]
    ['kill_switch_on', 'kill_switch_off']
    """
    until = first_ts_ns + warmup_ns
    reason = f"backtest warm-up until {iso_utc(until)}"
    return [
        ControlCommand(
            command_id=f"warmup-{name}-{first_ts_ns}",
            command=name,  # type: ignore[arg-type]
            scope=GLOBAL,
            reason=reason,
            operator="tickwise backtest",
            ts_event_ns=first_ts_ns,
            effective_ts_event_ns=at,
        )
        for name, at in (("kill_switch_on", first_ts_ns), ("kill_switch_off", until))
    ]
