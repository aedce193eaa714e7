"""The base every wire contract shares.

Frozen, ``extra="forbid"`` and no inf/nan: a message that does not match its contract exactly is
rejected at the edge, never half-read. ``schema_version`` travels in every message so consumers
can branch on it when a contract evolves.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Contract(BaseModel):
    """A versioned, immutable message that crosses a topic."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        allow_inf_nan=False,
        strict=False,
        ser_json_inf_nan="null",
    )

    def to_bytes(self) -> bytes:
        """Encode as the exact JSON bytes put on a topic (and written by replay).

        The serializer's own bytes: ``model_dump_json`` would decode them to ``str`` for us to
        encode again, a third of the cost of a small message (the bytes are the same).
        """
        return self.__pydantic_serializer__.to_json(self)
