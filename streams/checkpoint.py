"""Checkpoints: a partition's whole pipeline state, saved beside the raw offset it reflects.

Where they are kept is a ``CheckpointStore``: by default a compacted Kafka topic
(``streams.live.checkpoint_topic``), which every worker of the cluster reaches without shared
storage; or a directory (``DirCheckpointStore``), one file per partition written to a temporary
name and renamed, so a crash leaves the previous checkpoint intact. Either way a partition that
moves to another worker resumes from its checkpoint; without one, the new owner rebuilds the
state by replaying the partition.

Unpickling runs code, and the store is shared, so each checkpoint is signed the one way
``CheckpointSigner`` does it: an HMAC-SHA256 under a key only the workers hold, over the
partition it belongs to and every byte of the pickle. A store checks the signature before pickle
sees a byte, and refuses an unsigned checkpoint, one signed with another key, one altered after
signing and one moved from another partition. Whoever can write the store but not read the key
can make a worker stop, never run code in it.

The key comes from ``TICKWISE_CHECKPOINT_KEY`` (the key), ``TICKWISE_CHECKPOINT_KEY_FILE`` or
``live.checkpoint_key_file`` (a file holding it). With none of them, each user gets a random key
made once in a private file (0600) under ``~/.config/tickwise``: signing is never off, and one
user's workers on one host share the key without set-up. Workers on several hosts must be given
one key, or they refuse each other's checkpoints (loudly).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import pickle
import secrets
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

KEY_ENV = "TICKWISE_CHECKPOINT_KEY"
KEY_FILE_ENV = "TICKWISE_CHECKPOINT_KEY_FILE"
KEY_CONFIG = "live.checkpoint_key_file"
MIN_KEY_BYTES = 32
# Every signed checkpoint starts with this line, then the 32-byte tag, then the pickle.
MAGIC = b"tickwise-checkpoint hmac-sha256 v1\n"
TAG_BYTES = hashlib.sha256().digest_size


class CheckpointKeyError(ValueError):
    """No usable signing key: two sources at once, an unreadable file, or too short a key."""


class CheckpointRefused(ValueError):
    """A checkpoint left unread because its signature does not hold."""


class CheckpointWriteError(OSError):
    """A checkpoint that could not be stored (the previous one stays the partition's)."""


@dataclass(frozen=True)
class Checkpoint:
    """State after processing every raw message up to and including ``offset``."""

    offset: int
    state: Any


class CheckpointStore(Protocol):
    """Where a worker keeps each raw partition's latest checkpoint."""

    def load(self, topic: str, partition: int) -> Checkpoint | None:
        """The partition's latest checkpoint, or None; ``CheckpointRefused`` if untrusted."""
        ...

    def save(self, topic: str, partition: int, checkpoint: Checkpoint) -> None:
        """Make ``checkpoint`` the partition's latest, whole or not at all."""
        ...


class CheckpointSigner:
    """Turns a checkpoint into signed bytes and back; every store keeps these bytes.

    The bytes are ``MAGIC``, the 32-byte tag, then the pickle.

    Examples
    --------
    >>> signer = CheckpointSigner(b"k" * 32)
    >>> data = signer.seal("ticks.raw", 0, Checkpoint(offset=41, state={"ES": 1}))
    >>> signer.open("ticks.raw", 0, data, "example")
    Checkpoint(offset=41, state={'ES': 1})
    >>> signer.open("ticks.raw", 1, data, "example")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    tickwise.streams.checkpoint.CheckpointRefused: example is not a trusted tickwise checkpoint ...
    """

    def __init__(self, key: bytes) -> None:
        _check_key(key, "the key given")
        self._key = key  # never logged, never in an error message

    def _tag(self, topic: str, partition: int, payload: bytes) -> bytes:
        # Signing the partition too stops a valid checkpoint being copied over another
        # partition's. Kafka topic names cannot hold a newline, so the fields cannot run into
        # each other.
        mac = hmac.new(self._key, MAGIC, hashlib.sha256)
        mac.update(f"{topic}\n{partition}\n".encode())
        mac.update(payload)
        return mac.digest()

    def seal(self, topic: str, partition: int, checkpoint: Checkpoint) -> bytes:
        """The signed bytes of ``checkpoint`` for this partition."""
        payload = pickle.dumps(checkpoint, protocol=pickle.HIGHEST_PROTOCOL)
        return MAGIC + self._tag(topic, partition, payload) + payload

    def open(self, topic: str, partition: int, data: bytes, where: str) -> Checkpoint:
        """The checkpoint in ``data``, read from ``where`` (named in errors).

        Raises ``CheckpointRefused`` for bytes whose signature does not hold, before unpickling.
        """
        header = len(MAGIC) + TAG_BYTES
        if not data.startswith(MAGIC):
            raise _refused(where, "it carries no tickwise signature (unsigned, or not ours)")
        tag, payload = data[len(MAGIC) : header], data[header:]
        if len(data) < header or not hmac.compare_digest(tag, self._tag(topic, partition, payload)):
            raise _refused(
                where,
                "its signature does not match (signed with another key, altered since, "
                "or another partition's checkpoint)",
            )
        try:
            checkpoint = pickle.loads(payload)  # signed by a holder of the key
        except Exception as exc:  # ours, but from a version whose classes have changed
            raise ValueError(f"{where} is not a readable tickwise checkpoint: {exc!r}") from exc
        if not isinstance(checkpoint, Checkpoint):
            raise ValueError(f"{where} is not a tickwise checkpoint")
        return checkpoint


class DirCheckpointStore:
    """One signed checkpoint file per (raw topic, partition) under a directory.

    Examples
    --------
    >>> import tempfile
    >>> store = DirCheckpointStore(tempfile.mkdtemp(), key=b"k" * 32)
    >>> store.load("ticks.raw", 0) is None
    True
    >>> store.save("ticks.raw", 0, Checkpoint(offset=41, state={"ES": 1}))
    >>> store.load("ticks.raw", 0)
    Checkpoint(offset=41, state={'ES': 1})
    """

    def __init__(self, directory: str | Path, key: bytes) -> None:
        self.directory = Path(directory)
        self._signer = CheckpointSigner(key)

    def _path(self, topic: str, partition: int) -> Path:
        return self.directory / f"{topic}-{partition}.ckpt"

    def save(self, topic: str, partition: int, checkpoint: Checkpoint) -> None:
        """Replace the partition's checkpoint atomically."""
        data = self._signer.seal(topic, partition, checkpoint)
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".ckpt-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self._path(topic, partition))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def load(self, topic: str, partition: int) -> Checkpoint | None:
        """The partition's latest checkpoint, or None if it has none.

        Raises ``CheckpointRefused`` for a file whose signature does not hold, before unpickling.
        """
        path = self._path(topic, partition)
        if not path.exists():
            return None
        # One read: the bytes checked are the bytes unpickled, whatever happens to the file.
        return self._signer.open(topic, partition, path.read_bytes(), str(path))


def _refused(where: str, why: str) -> CheckpointRefused:
    return CheckpointRefused(
        f"{where} is not a trusted tickwise checkpoint and was not read: {why}. Give this worker "
        f"the key its writers used ({KEY_ENV}, {KEY_FILE_ENV} or {KEY_CONFIG}), or remove the "
        "checkpoint to rebuild the partition from its raw topic"
    )


def _check_key(key: bytes, source: str) -> bytes:
    if len(key) < MIN_KEY_BYTES:
        raise CheckpointKeyError(
            f"the checkpoint key from {source} is shorter than {MIN_KEY_BYTES} bytes; "
            "make one with `python -c 'import secrets; print(secrets.token_hex(32))'`"
        )
    return key


def _read_key_file(path: Path, source: str) -> bytes:
    try:
        key = path.read_bytes().strip()
    except OSError as exc:
        raise CheckpointKeyError(
            f"cannot read the checkpoint key file {path} ({source}): {exc.strerror}"
        ) from exc
    return _check_key(key, f"{source} ({path})")


def default_key_file(environ: Mapping[str, str] | None = None) -> Path:
    """This user's own key file: ``$XDG_CONFIG_HOME/tickwise/checkpoint.key``."""
    env = os.environ if environ is None else environ
    base = Path(env.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "tickwise" / "checkpoint.key"


def make_key_file(path: Path, mode: int = 0o600) -> bytes:
    """Create ``path`` with a random key unless it exists; return the key it holds.

    The file is written in full under a temporary name, then hard-linked into place, which fails
    if it exists: two workers starting at once end up with the one key, never a half-written one.
    """
    if not path.exists():
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".key-")  # created 0600
        except OSError as exc:
            raise CheckpointKeyError(
                f"cannot create the checkpoint key file {path}: {exc.strerror}; "
                f"set {KEY_ENV} or {KEY_FILE_ENV}"
            ) from exc
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(MIN_KEY_BYTES) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, mode)
            with contextlib.suppress(FileExistsError):  # another process was first: use theirs
                os.link(tmp, path)
        finally:
            os.unlink(tmp)
    return _read_key_file(path, "the generated key file")


def checkpoint_key(
    key_file: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> bytes:
    """The key checkpoints are signed with, from the one source configured, else this user's own.

    ``key_file`` is ``live.checkpoint_key_file``. More than one source is refused rather than
    ranked: two keys for one worker are a mistake, and picking one would hide it.

    Examples
    --------
    >>> len(checkpoint_key(environ={KEY_ENV: "x" * 40}))
    40
    >>> checkpoint_key(environ={KEY_ENV: "short"})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    tickwise.streams.checkpoint.CheckpointKeyError: the checkpoint key from ...
    """
    env = os.environ if environ is None else environ
    given = {
        f"${KEY_ENV}": env.get(KEY_ENV) or None,
        f"${KEY_FILE_ENV}": env.get(KEY_FILE_ENV) or None,
        KEY_CONFIG: str(key_file) if key_file else None,
    }
    named = [source for source, value in given.items() if value is not None]
    if len(named) > 1:
        raise CheckpointKeyError(
            f"the checkpoint key is given more than once ({' and '.join(named)}); keep one"
        )
    if given[f"${KEY_ENV}"] is not None:
        return _check_key(env[KEY_ENV].encode(), f"${KEY_ENV}")
    if named:
        (source,) = named
        return _read_key_file(Path(given[source] or ""), source)
    return make_key_file(default_key_file(env))
