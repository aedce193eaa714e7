"""The base every wire contract shares.

Frozen, ``extra="forbid"`` and no inf/nan: a message that does not match its contract exactly is
rejected at the edge, never half-read. ``schema_version`` travels in every message so consumers
can branch on it when a contract evolves.
"""

from __future__ import annotations

from typing import Any, Self

from pydantic import BaseModel, ConfigDict

_set = object.__setattr__
_FIELDS: dict[type, frozenset[str]] = {}  # each contract's field names (``Contract.trusted``)


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

    def replaced(self, **changes: Any) -> Self:
        """A copy with ``changes``, which must already be what validation makes of them
        (``model_copy(update=...)`` semantics: nothing is validated).

        Why: sealing an audit entry copies it to set its hash, and ``model_copy``'s generic
        copying (private and extra attributes, the fields-set) was half of what sealing a hold
        summary cost. A frozen contract's field values are shared, as ``model_copy`` shares them.
        """
        copy = object.__new__(type(self))
        _set(copy, "__dict__", {**self.__dict__, **changes})
        _set(copy, "__pydantic_fields_set__", self.__pydantic_fields_set__ | changes.keys())
        _set(copy, "__pydantic_extra__", None)  # extra="forbid": there are none
        _set(copy, "__pydantic_private__", None)  # nor private attributes
        return copy

    @classmethod
    def trusted(cls, fields: dict[str, Any]) -> Self:
        """The contract whose values are ``fields``: every field given, each already what
        validation makes of it (nothing is validated). The dict becomes the contract's own:
        the caller must not change it afterwards.

        Why: a hold summary is made of the audit chain's own values and its bytes are written
        from them (``schemas.wire``); validating them into a model as well was most of what
        sealing one cost, and passing its fields as keywords (a dict unpacked and packed
        again) most of what was left. Built as ``replaced`` builds its copy.
        """
        names = _FIELDS.get(cls)
        if names is None:  # reading the model's fields costs more than building it
            names = _FIELDS[cls] = frozenset(cls.model_fields)
        if fields.keys() != names:
            raise ValueError(f"{cls.__name__} needs every field: {sorted(names)}")
        made = object.__new__(cls)
        _set(made, "__dict__", fields)
        _set(made, "__pydantic_fields_set__", set(names))
        _set(made, "__pydantic_extra__", None)
        _set(made, "__pydantic_private__", None)
        return made
