"""Per-instrument operator state that can leave a worker and come back.

Every stateful operator keeps its state in a dict keyed by instrument (the partition key) and
exposes it through ``export_state``/``import_state``. A checkpoint is then just these objects,
pickled per instrument; whoever takes over a partition imports them and continues exactly where
the previous owner stopped. Operators added later follow the same protocol.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class KeyedState(Protocol):
    """An operator whose whole state is a picklable object per instrument."""

    def export_state(self, instrument: str) -> Any | None:
        """Return the instrument's state (None if it has none); the caller must not mutate it."""
        ...

    def import_state(self, instrument: str, state: Any) -> None:
        """Replace the instrument's state with one exported earlier."""
        ...


class InstrumentStateMixin:
    """``KeyedState`` for operators that keep their state in ``self._state[instrument]``."""

    _state: dict[str, Any]

    def export_state(self, instrument: str) -> Any | None:
        return self._state.get(instrument)

    def import_state(self, instrument: str, state: Any) -> None:
        self._state[instrument] = state

    def instruments(self) -> list[str]:
        """Instruments this operator holds state for."""
        return list(self._state)
