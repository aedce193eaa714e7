"""The whole engine over batches: validate, features, model and decide, state carried across.

``Engine.run`` takes one partition's batch (a block of a file in replay, what one consume call
returned live) and gives back what the per-tick pipeline would publish for it: quarantine
records, decisions, orders, fills and audit entries (``replay.engine.run_file`` chains it
behind the file reader for a whole file). A config the engine cannot serve yet raises
``NotImplementedError`` when the engine is built (see docs/ENGINE.md for what is still per
tick).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tickwise.schemas.decisions import ControlCommand
from tickwise.schemas.quarantine import QuarantineRecord
from tickwise.streams.config import TickwiseConfig
from tickwise.streams.engine.batch import SymbolTable, TickBatch
from tickwise.streams.engine.decide import BatchDecide, Rendered
from tickwise.streams.engine.features import BatchFeatures
from tickwise.streams.engine.models import BatchModel
from tickwise.streams.engine.validate import BatchValidator


@dataclass(slots=True)
class BatchOutput:
    """What one batch gave rise to: the refused rows' records (by row) and the decide stage's
    objects."""

    quarantined: dict[int, QuarantineRecord]
    decided: Rendered


class Engine:
    """Every kernel of the engine for one partition, with their state."""

    def __init__(
        self,
        config: TickwiseConfig,
        symbols: SymbolTable | None = None,
        commands: Iterable[ControlCommand] = (),
    ) -> None:
        self.config = config
        self.symbols = symbols if symbols is not None else SymbolTable()
        self.validator = BatchValidator(config.validation, self.symbols)
        self.features = BatchFeatures(config.features, self.symbols)
        self.model = BatchModel(
            config.model, config.label, config.features.feature_set, self.symbols, config.decision
        )
        self.decide = BatchDecide(config, self.symbols)
        self.decide.on_control(commands)

    def run(self, batch: TickBatch) -> BatchOutput:
        """One batch through every stage."""
        verdict, aux = self.validator.run(batch)
        clean = verdict == 0
        emit, vectors = self.features.run(batch, clean)
        scored = self.model.run(batch, clean, emit, vectors)
        cols = self.decide.run(batch, clean, emit, scored)
        return BatchOutput(
            self.validator.records(batch, verdict, aux),
            self.decide.render(batch, cols, vectors, scored),
        )

    def finish(self) -> Rendered:
        """At the end of a finite input: the summaries of the runs of holds still open."""
        return Rendered(audit=self.decide.finish())
