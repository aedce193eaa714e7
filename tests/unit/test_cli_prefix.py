"""``--topic-prefix`` is the one name for a deployment's topic prefix; ``--prefix`` still works."""

from __future__ import annotations

import pytest

from tickwise.streams.cli import build_parser

# every command that took --prefix before it was renamed, with its other required words
COMMANDS = [
    ["topics", "list"],
    ["feed"],
    ["replay", "--from", "0", "--to", "1"],
    ["replay-check", "--from", "0", "--to", "1"],
    ["quarantine", "stats"],
    ["status"],
    ["kill-switch", "on", "--scope", "global", "--reason", "r"],
    ["audit", "sink"],
    ["security", "apply"],
]


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: a[0])
def test_topic_prefix_is_read(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert build_parser().parse_args([*argv, "--topic-prefix", "desk."]).topic_prefix == "desk."
    assert build_parser().parse_args(argv).topic_prefix == ""
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: a[0])
def test_the_deprecated_prefix_still_works_and_warns(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert build_parser().parse_args([*argv, "--prefix", "desk."]).topic_prefix == "desk."
    err = capsys.readouterr().err
    assert "--prefix is deprecated" in err and "--topic-prefix" in err


def test_help_shows_only_the_kept_name(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["status", "--help"])
    out = capsys.readouterr().out
    assert "--topic-prefix" in out and "--prefix " not in out
