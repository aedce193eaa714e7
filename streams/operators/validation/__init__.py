"""Validation and cleansing: every raw message becomes a clean tick or a quarantine record.

``records`` builds quarantine records, ``rules`` holds the checks (pure functions of a tick, the
instrument's rules and its state), ``validator`` applies them in order with per-instrument
state, ``quality`` counts the verdicts per instrument.
"""

from tickwise.streams.operators.validation.quality import QualityMonitor
from tickwise.streams.operators.validation.records import quarantine, schema_reason
from tickwise.streams.operators.validation.validator import InstrumentState, Validator

__all__ = ["InstrumentState", "QualityMonitor", "Validator", "quarantine", "schema_reason"]
