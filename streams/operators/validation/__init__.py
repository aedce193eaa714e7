"""Validation and cleansing: every raw message becomes a clean tick or a quarantine record.

``records`` builds quarantine records, ``quality`` counts the verdicts per instrument and
``rules`` holds what every validator shares; the rules run in the engine's validation kernel
(``streams.engine.validate``).
"""

from tickwise.streams.operators.validation.quality import QualityMonitor
from tickwise.streams.operators.validation.records import quarantine, schema_reason

__all__ = ["QualityMonitor", "quarantine", "schema_reason"]
