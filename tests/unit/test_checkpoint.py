"""Checkpoint files are signed, and nothing unsigned, foreign or altered reaches pickle.

The hostile payloads here create a marker directory when unpickled, so "refused" is checked by
what did not happen, not only by the exception; a control shows the same bytes do create it.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickwise.streams.checkpoint import (
    KEY_ENV,
    KEY_FILE_ENV,
    MAGIC,
    TAG_BYTES,
    Checkpoint,
    CheckpointKeyError,
    CheckpointRefused,
    DirCheckpointStore,
    checkpoint_key,
    default_key_file,
)
from tickwise.streams.config import load_config
from tickwise.streams.live.state import EngineState, same_layout

KEY = b"k" * 32
OTHER_KEY = b"o" * 32
TOPIC = "ticks.raw"


class MakesMarker:
    """Unpickling this creates ``path``: the stand-in for code an attacker would run."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.mkdir, (str(self.path),)


def file_of(store: DirCheckpointStore, partition: int = 0) -> Path:
    return store.directory / f"{TOPIC}-{partition}.ckpt"


def assert_refused(store: DirCheckpointStore, why: str, partition: int = 0) -> None:
    with pytest.raises(CheckpointRefused) as refused:
        store.load(TOPIC, partition)
    message = str(refused.value)
    assert str(file_of(store, partition)) in message and why in message
    assert KEY.decode() not in message and OTHER_KEY.decode() not in message


def test_a_signed_engine_state_comes_back_as_it_was_saved(tmp_path: Path) -> None:
    store = DirCheckpointStore(tmp_path, KEY)
    state = EngineState(load_config())
    store.save(TOPIC, 2, Checkpoint(offset=41, state={"engine": state, "n": 7}))
    back = store.load(TOPIC, 2)
    assert back is not None and back.offset == 41 and back.state["n"] == 7
    assert isinstance(back.state["engine"], EngineState)
    assert same_layout(back.state["engine"], EngineState(load_config()))
    assert file_of(store, 2).read_bytes().startswith(MAGIC)
    assert store.load(TOPIC, 3) is None, "another partition has none"


def test_an_unsigned_pickle_is_refused_unread(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    hostile = pickle.dumps(Checkpoint(offset=1, state=MakesMarker(marker)))
    store = DirCheckpointStore(tmp_path / "ckpt", KEY)
    store.directory.mkdir()
    file_of(store).write_bytes(hostile)
    assert_refused(store, "no tickwise signature")
    assert not marker.exists()
    pickle.loads(hostile)  # the control: these bytes do run code when unpickled
    assert marker.exists()


def test_a_file_signed_with_another_key_is_refused_unread(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    theirs = DirCheckpointStore(tmp_path / "ckpt", OTHER_KEY)
    theirs.save(TOPIC, 0, Checkpoint(offset=1, state=MakesMarker(marker)))
    assert_refused(DirCheckpointStore(tmp_path / "ckpt", KEY), "signature does not match")
    assert not marker.exists()
    theirs.load(TOPIC, 0)  # the control: with its own key the file is read, and runs
    assert marker.exists()


def test_a_payload_swapped_under_a_valid_signature_is_refused_unread(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    store = DirCheckpointStore(tmp_path / "ckpt", KEY)
    store.save(TOPIC, 0, Checkpoint(offset=1, state={"ES": 1}))
    signed = file_of(store).read_bytes()
    header = signed[: len(MAGIC) + TAG_BYTES]
    file_of(store).write_bytes(header + pickle.dumps(Checkpoint(1, MakesMarker(marker))))
    assert_refused(store, "signature does not match")
    assert not marker.exists()


def test_another_partitions_file_is_refused(tmp_path: Path) -> None:
    store = DirCheckpointStore(tmp_path, KEY)
    store.save(TOPIC, 0, Checkpoint(offset=1, state={"ES": 1}))
    file_of(store, 1).write_bytes(file_of(store, 0).read_bytes())
    assert_refused(store, "another partition's checkpoint", partition=1)
    assert store.load(TOPIC, 0) == Checkpoint(offset=1, state={"ES": 1})


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_flipped_byte_is_refused(tmp_path_factory: pytest.TempPathFactory, data) -> None:
    store = DirCheckpointStore(tmp_path_factory.mktemp("flip"), KEY)
    store.save(TOPIC, 0, Checkpoint(offset=9, state={"ES": [1.5, 2.5], "NQ": "x"}))
    signed = bytearray(file_of(store).read_bytes())
    at = data.draw(st.integers(0, len(signed) - 1), label="at")
    signed[at] ^= data.draw(st.integers(1, 255), label="mask")
    file_of(store).write_bytes(bytes(signed))
    with pytest.raises(CheckpointRefused):
        store.load(TOPIC, 0)


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_any_truncation_is_refused(tmp_path_factory: pytest.TempPathFactory, data) -> None:
    store = DirCheckpointStore(tmp_path_factory.mktemp("cut"), KEY)
    store.save(TOPIC, 0, Checkpoint(offset=9, state={"ES": 1}))
    signed = file_of(store).read_bytes()
    file_of(store).write_bytes(signed[: data.draw(st.integers(0, len(signed) - 1))])
    with pytest.raises(CheckpointRefused):
        store.load(TOPIC, 0)


# -- where the key comes from ---------------------------------------------------------------


def test_the_key_comes_from_exactly_one_source(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("f" * 40 + "\n")
    assert checkpoint_key(environ={KEY_ENV: "e" * 32}) == b"e" * 32
    assert checkpoint_key(environ={KEY_FILE_ENV: str(key_file)}) == b"f" * 40
    assert checkpoint_key(key_file, environ={}) == b"f" * 40
    with pytest.raises(CheckpointKeyError, match="more than once") as twice:
        checkpoint_key(key_file, environ={KEY_ENV: "e" * 32})
    assert "e" * 32 not in str(twice.value) and "f" * 40 not in str(twice.value)


def test_a_short_or_missing_key_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(CheckpointKeyError, match=r"\$TICKWISE_CHECKPOINT_KEY is shorter"):
        checkpoint_key(environ={KEY_ENV: "s" * 31})
    short = tmp_path / "short"
    short.write_text("s" * 31)
    with pytest.raises(CheckpointKeyError, match=f"{short}.* shorter") as refused:
        checkpoint_key(short, environ={})
    assert "s" * 31 not in str(refused.value)
    missing = tmp_path / "nowhere"
    with pytest.raises(CheckpointKeyError, match=f"cannot read .*{missing}"):
        checkpoint_key(environ={KEY_FILE_ENV: str(missing)})
    with pytest.raises(CheckpointKeyError):
        DirCheckpointStore(tmp_path, b"short")


def test_without_a_source_each_user_gets_one_private_key_made_once(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config")}
    path = default_key_file(env)
    assert path == tmp_path / "config" / "tickwise" / "checkpoint.key"
    key = checkpoint_key(environ=env)
    assert len(key) >= 32 and path.read_bytes().strip() == key
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert checkpoint_key(environ=env) == key, "made once, then reused"
    assert [p.name for p in path.parent.iterdir()] == ["checkpoint.key"], "no temporary left"
    other = checkpoint_key(environ={"XDG_CONFIG_HOME": str(tmp_path / "elsewhere")})
    assert other != key, "random, not derived"
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    with pytest.raises(CheckpointKeyError, match=f"cannot create .*{not_a_dir}.*{KEY_ENV}"):
        checkpoint_key(environ={"XDG_CONFIG_HOME": str(not_a_dir)})


def test_a_worker_with_an_unusable_key_does_not_start(tmp_path: Path) -> None:
    env = {**os.environ, KEY_ENV: "too-short-a-key"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tickwise.streams.cli",
            "worker",
            "--bootstrap-servers",
            "127.0.0.1:9",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    assert "$TICKWISE_CHECKPOINT_KEY is shorter than 32 bytes" in proc.stderr
    assert "too-short-a-key" not in proc.stderr + proc.stdout


def test_checkpoints_go_to_the_topic_unless_a_directory_is_chosen() -> None:
    from pydantic import ValidationError

    from tickwise.streams.config import LiveConfig

    assert LiveConfig().checkpoint_store == "topic"
    assert LiveConfig(checkpoint_store="dir", checkpoint_dir="/x").checkpoint_dir == "/x"
    # a directory that the topic store would leave unused is a mistake, said at once
    with pytest.raises(ValidationError, match="only with checkpoint_store = 'dir'"):
        LiveConfig(checkpoint_dir="/x")
