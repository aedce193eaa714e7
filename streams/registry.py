"""The model registry: every model version, its lineage, stage history and audit trail.

A local directory (configurable; a shared mount for several workers' operators)::

    <root>/versions/<model_id>/v<version>.json   metadata (config, window, metrics, stage, parent)
    <root>/versions/<model_id>/v<version>.pkl    optional trained state from a training run
    <root>/audit.jsonl                           every registration and stage change: who, why

``audit.jsonl`` is a hash chain (``schemas.registry.RegistryEntry``, sealed and checked as the
audit trail is): ``verify`` finds an entry altered, dropped or put out of order, and
``streams.live.registry_log`` publishes the entries on the ``registry`` topic, where the
watchtower checks them as they come.

Files are written atomically (temporary file, then rename). The registry is the operators'
book of record; workers never read it. They learn about stage changes from ``control``
commands, which carry the version's model config, so a worker needs no shared filesystem and
a backtest replays the same commands.
"""

from __future__ import annotations

import json
import os
import pickle
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the CLI parser reads DEFAULT_ROOT; pydantic loads when a command is built
    from tickwise.schemas.decisions import ControlCommand
    from tickwise.schemas.registry import RegistryEntry
    from tickwise.streams.config import ModelConfig

REGISTERED = "registered"  # a version no worker has been told about (the registry's own stage)
DEFAULT_ROOT = Path(os.environ.get("TICKWISE_REGISTRY", "~/.local/share/tickwise/registry"))


class RegistryError(ValueError):
    """A request the registry refuses (unknown version, nothing to roll back to...)."""


@dataclass
class ModelVersion:
    """One registered model version."""

    model_id: str
    version: int
    config: dict[str, Any]
    stage: str = REGISTERED
    parent: str | None = None
    training_window: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    instruments: list[str] | None = None
    capital_fraction: float | None = None
    created_by: str = ""
    created_ts_ns: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.model_id}:v{self.version}"


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def parse_key(key: str) -> tuple[str, int]:
    """``'logreg:v2'`` -> ``('logreg', 2)``.

    Examples
    --------
    >>> parse_key("logreg:v2")
    ('logreg', 2)
    """
    model_id, sep, version = key.rpartition(":v")
    if not sep or not version.isdigit():
        raise RegistryError(f"expected MODEL_ID:vN, got {key!r}")
    return model_id, int(version)


class Registry:
    """Model versions on disk, with promotion and rollback that produce control commands.

    Examples
    --------
    >>> import tempfile
    >>> from tickwise.streams.config import ModelConfig
    >>> reg = Registry(tempfile.mkdtemp())
    >>> v1 = reg.register(ModelConfig(), operator="ann", reason="baseline")
    >>> cmd = reg.promote(v1.key, "production", operator="ann", reason="go", now_ns=1)
    >>> (cmd.command, cmd.model_id, cmd.stage), reg.get(v1.key).stage
    (('promote', 'logreg', <Stage.PRODUCTION: 'production'>), 'production')
    """

    def __init__(self, root: str | Path = DEFAULT_ROOT) -> None:
        self.root = Path(root).expanduser()

    def _path(self, model_id: str, version: int, suffix: str = ".json") -> Path:
        return self.root / "versions" / model_id / f"v{version}{suffix}"

    def _save(self, mv: ModelVersion) -> None:
        body = json.dumps(asdict(mv), indent=2, sort_keys=True).encode()
        _atomic_write(self._path(mv.model_id, mv.version), body)

    def log_lines(self) -> list[bytes]:
        """The log's entries as stored, oldest first (what is hashed and published)."""
        path = self.root / "audit.jsonl"
        if not path.exists():
            return []
        return [line for line in path.read_bytes().splitlines() if line.strip()]

    def _audit(self, **fields: Any) -> RegistryEntry:
        """Append the next link of the chain, sealed, and return it."""
        from tickwise.schemas.registry import RegistryEntry
        from tickwise.streams.operators.audit import GENESIS, seal

        lines = self.log_lines()
        seq, prev = 0, GENESIS
        if lines:
            last = RegistryEntry.model_validate_json(lines[-1])
            seq, prev = last.seq + 1, last.hash
        unsigned = RegistryEntry(audit_id=f"reg-{seq}", seq=seq, prev_hash=prev, hash="", **fields)
        entry, wire = seal(unsigned)
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "audit.jsonl", "ab") as fh:
            fh.write(wire + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        return entry

    def verify(self) -> tuple[list[str], tuple[int, str] | None]:
        """Check the log's chain as stored; return (problems, its head: seq and hash)."""
        from pydantic import ValidationError

        from tickwise.schemas.registry import REGISTRY_CHAIN, RegistryEntry
        from tickwise.streams.operators.audit import check_link

        problems: list[str] = []
        heads: dict[str, tuple[int, str]] = {}
        for n, line in enumerate(self.log_lines(), 1):
            try:
                entry = RegistryEntry.model_validate_json(line)
            except ValidationError as exc:
                problems.append(f"line {n}: not a registry entry ({exc.error_count()} errors)")
                continue
            problems += check_link(entry, heads, line)
        return problems, heads.get(REGISTRY_CHAIN)

    def versions(self) -> list[ModelVersion]:
        """Every registered version, by model id then version."""
        out = []
        for path in sorted((self.root / "versions").glob("*/v*.json")):
            out.append(ModelVersion(**json.loads(path.read_text())))
        return sorted(out, key=lambda v: (v.model_id, v.version))

    def get(self, key: str) -> ModelVersion:
        """The version ``MODEL_ID:vN``; ``RegistryError`` if unknown."""
        model_id, version = parse_key(key)
        path = self._path(model_id, version)
        if not path.exists():
            raise RegistryError(f"no model version {key} in {self.root}")
        return ModelVersion(**json.loads(path.read_text()))

    def audit_trail(self) -> list[RegistryEntry]:
        """Every registry change, oldest first."""
        from tickwise.schemas.registry import RegistryEntry

        return [RegistryEntry.model_validate_json(line) for line in self.log_lines()]

    def register(
        self,
        config: ModelConfig,
        operator: str,
        reason: str,
        parent: str | None = None,
        training_window: dict[str, Any] | None = None,
        metrics: dict[str, Any] | None = None,
        state: Any = None,
        now_ns: int = 0,
    ) -> ModelVersion:
        """Add a version; the version number is the config's unless taken, then the next free."""
        taken = {v.version for v in self.versions() if v.model_id == config.model_id}
        version = config.model_version
        while version in taken:
            version += 1
        config = config.model_copy(update={"model_version": version})
        if parent is not None:
            self.get(parent)
        mv = ModelVersion(
            model_id=config.model_id,
            version=version,
            config=config.model_dump(),
            parent=parent,
            training_window=training_window or {},
            metrics=metrics or {},
            created_by=operator,
            created_ts_ns=now_ns,
        )
        if state is not None:
            _atomic_write(self._path(mv.model_id, version, ".pkl"), pickle.dumps(state))
        self._save(mv)
        self._audit(
            event="register",
            model_id=mv.model_id,
            model_version=mv.version,
            to_stage=REGISTERED,
            operator=operator,
            reason=reason,
            parent=parent,
            ts_event_ns=now_ns,
        )
        return mv

    def production(self) -> ModelVersion | None:
        """The version currently in production, if any."""
        from tickwise.schemas.decisions import Stage

        live = [v for v in self.versions() if v.stage == Stage.PRODUCTION]
        return live[-1] if live else None

    def _move(
        self, mv: ModelVersion, stage: str, operator: str, reason: str, now_ns: int, command_id: str
    ) -> None:
        mv.history.append(
            {
                "from": mv.stage,
                "to": stage,
                "operator": operator,
                "reason": reason,
                "ts_ns": now_ns,
                "command_id": command_id,
            }
        )
        self._audit(
            event="stage",
            model_id=mv.model_id,
            model_version=mv.version,
            from_stage=str(mv.stage),
            to_stage=str(stage),
            operator=operator,
            reason=reason,
            ts_event_ns=now_ns,
            command_id=command_id,
        )
        mv.stage = stage
        self._save(mv)

    def promote(
        self,
        key: str,
        stage: str,
        operator: str,
        reason: str,
        now_ns: int,
        instruments: list[str] | None = None,
        capital_fraction: float | None = None,
        command_id: str | None = None,
    ) -> ControlCommand:
        """Move ``key`` to ``stage`` and return the control command that tells the workers."""
        from tickwise.schemas.decisions import ControlCommand, Stage

        if stage not in set(Stage):
            raise RegistryError(f"stage must be one of {[str(s) for s in Stage]}, got {stage!r}")
        stage = Stage(stage)
        mv = self.get(key)
        command_id = command_id or f"promote-{mv.model_id}-v{mv.version}-{stage}-{now_ns}"
        if stage is Stage.PRODUCTION:
            current = self.production()
            if current is not None and current.key != mv.key:
                self._move(
                    current, Stage.RETIRED, operator, f"replaced by {mv.key}", now_ns, command_id
                )
        mv.instruments = instruments
        mv.capital_fraction = capital_fraction
        self._move(mv, stage, operator, reason, now_ns, command_id)
        return ControlCommand(
            command_id=command_id,
            command="promote",
            scope="global",
            reason=reason,
            operator=operator,
            ts_event_ns=now_ns,
            model_id=mv.model_id,
            model_version=mv.version,
            stage=stage,
            model_spec=mv.config,
            instruments=instruments,
            capital_fraction=capital_fraction,
        )

    def rollback(
        self, operator: str, reason: str, now_ns: int, command_id: str | None = None
    ) -> ControlCommand:
        """Retire production and bring back the version it replaced; return the command."""
        from tickwise.schemas.decisions import ControlCommand, Stage

        current = self.production()
        if current is None:
            raise RegistryError("nothing is in production")
        promoted = [h for h in current.history if h["to"] == Stage.PRODUCTION]
        since = promoted[-1]["command_id"] if promoted else None
        previous = [
            v
            for v in self.versions()
            if any(h["to"] == Stage.RETIRED and h["command_id"] == since for h in v.history)
            and v.key != current.key
        ]
        if not previous:
            raise RegistryError(f"{current.key} replaced no earlier production version")
        back = previous[-1]
        command_id = command_id or f"rollback-{current.model_id}-v{current.version}-{now_ns}"
        self._move(current, Stage.RETIRED, operator, reason, now_ns, command_id)
        self._move(
            back,
            Stage.PRODUCTION,
            operator,
            f"rollback of {current.key}: {reason}",
            now_ns,
            command_id,
        )
        return ControlCommand(
            command_id=command_id,
            command="rollback",
            scope="global",
            reason=reason,
            operator=operator,
            ts_event_ns=now_ns,
            model_id=back.model_id,
            model_version=back.version,
            model_spec=back.config,
        )
