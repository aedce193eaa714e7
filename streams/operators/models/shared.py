"""What river's model stage and the compiled engine share, without importing river.

A model version's key, a deployment, a control command applied to an instrument and its audit
alert, and the clip of standardised inputs: the engine needs these, and importing them from the
zoo's modules would load river's estimators (and scipy) before a process's first tick.
"""

from __future__ import annotations

from dataclasses import dataclass

from tickwise.schemas.decisions import Alert, AppliedControl, ControlCommand, Severity, Stage
from tickwise.streams.config import ModelConfig

# Standardised inputs are clipped: a feature that was constant during warm-up (a zero variance
# estimate) must not turn one unusual tick into a 300-sigma input and a saturated score.
Z_CLIP = 5.0


def version_key(model_id: str, version: int) -> str:
    """The key of a model version in a deployment, e.g. ``logreg:v2``."""
    return f"{model_id}:v{version}"


@dataclass(frozen=True)
class Deployed:
    """One model version in a deployment and where it may act."""

    model: ModelConfig
    stage: Stage = Stage.PRODUCTION
    instruments: tuple[str, ...] | None = None
    capital_fraction: float = 1.0

    @property
    def key(self) -> str:
        return version_key(self.model.model_id, self.model.model_version)


@dataclass(frozen=True, slots=True)
class Applied:
    """A control command applied to one instrument, at the tick where it took effect."""

    command_id: str
    command: str
    instrument: str
    tick_id: str
    ts_event_ns: int
    detail: str
    operator: str = ""  # who asked (kept in the CONTROL_APPLIED alert of the audit trail)
    scope: str = ""
    reason: str = ""
    model_id: str | None = None
    given: ControlCommand | None = None  # the command: its audit entry carries it whole

    @classmethod
    def of(
        cls, cmd: ControlCommand, instrument: str, tick_id: str, ts_event_ns: int, detail: str
    ) -> Applied:
        """``cmd`` as the model stage applied it to ``instrument`` at a tick."""
        return cls(
            cmd.command_id, cmd.command, instrument, tick_id, ts_event_ns, detail,
            cmd.operator, cmd.scope, cmd.reason, cmd.model_id, cmd,
        )  # fmt: skip

    def audited(self) -> AppliedControl:
        """The entry this stage change makes in the instrument's audit record: with the rest
        of its command, so replaying the trail (``operators.control.replay_commands``)
        deploys what live deployed, where and when it did."""
        given = self.given
        return AppliedControl(
            command_id=self.command_id,
            command=self.command,
            scope=self.scope,
            reason=self.reason,
            applied_ts_event_ns=self.ts_event_ns,
            model_id=self.model_id,
            operator=self.operator or None,
            detail=self.detail,
            model_version=None if given is None else given.model_version,
            stage=None if given is None else given.stage,
            model_spec=None if given is None else given.model_spec,
            instruments=None if given is None else given.instruments,
            capital_fraction=None if given is None else given.capital_fraction,
        )


def applied_alert(applied: Applied, model_id: str | None = None) -> Alert:
    """The audit trail entry of a control command applied to one instrument (topic ``alerts``)."""
    return Alert(
        alert_id=f"ctl-{applied.command_id}-{applied.instrument}",
        ts_event_ns=applied.ts_event_ns,
        severity=Severity.INFO,
        code="CONTROL_APPLIED",
        detail=(
            f"{applied.command} {applied.command_id}: {applied.detail}; "
            f"{f'asked by {applied.operator}; ' if applied.operator else ''}"
            f"from tick {applied.tick_id} (ts_event_ns {applied.ts_event_ns})"
        ),
        instrument=applied.instrument,
        model_id=model_id,
    )
