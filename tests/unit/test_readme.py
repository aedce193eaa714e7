"""Every command the README and docs/ show still runs, and every link in them still lands.

Readers copy commands from these pages. A renamed option, a removed sub-command, a make target
or a benchmark module that is gone must fail here rather than on their terminal. Commands are
taken from shell code blocks and from inline code that starts like a command; each `tickwise`
command is resolved against the real parser (sub-commands, positional choices, options) and its
``--help`` is run as a user would run it; make targets are dry-run; benchmark modules must
answer ``--help``.

Notation the pages use for synopses is understood: ``[--opt X]`` is optional, ``a|b`` lists
alternatives (each is checked), ``\\`` continues a line and ``#`` starts a comment.
"""

from __future__ import annotations

import argparse
import itertools
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest

from tickwise.streams.cli import ALIASES, build_parser

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_FENCES = {"", "bash", "sh", "shell", "console"}
# Inline code is a command when it starts with one of these (after VAR=value assignments).
COMMAND_START = re.compile(r"^(?:[A-Z_][A-Z0-9_]*=\S*\s+)*(?:tickwise|make|python3?)\s")
HELP_TIMEOUT_S = 120


@dataclass(frozen=True)
class Command:
    """One command a page shows: the program, its words before any option, and its options."""

    program: str  # "tickwise", "make" or "benchmarks"
    words: tuple[str, ...]
    options: tuple[str, ...] = ()
    source: str = field(default="", compare=False)


def _fences(text: str) -> tuple[list[str], str]:
    """Split a page into the bodies of its shell code blocks and the prose outside any block."""
    blocks: list[str] = []
    prose: list[str] = []
    body: list[str] | None = None
    shell = False
    for line in text.splitlines():
        fence = re.match(r"^\s*```\s*([\w-]*)", line)
        if fence and body is None:
            body, shell = [], fence.group(1).lower() in SHELL_FENCES
        elif fence and line.strip() == "```":
            if shell:
                blocks.append("\n".join(body or []))
            body = None
        elif body is not None:
            body.append(line)
        else:
            prose.append(line)
    return blocks, "\n".join(prose)


def shell_lines(text: str) -> list[str]:
    """The command lines of a page: shell blocks (continuations joined) and command-like code."""
    blocks, prose = _fences(text)
    lines = []
    for block in blocks:
        lines += [ln.strip() for ln in block.replace("\\\n", " ").splitlines() if ln.strip()]
    for span in re.findall(r"`([^`]+)`", prose):
        span = " ".join(span.split())
        if COMMAND_START.match(span + " "):
            lines.append(span)
    return lines


def _segments(line: str) -> list[list[str]]:
    """Tokens of each command in a line, split at pipes, ``&&`` and ``;``; comments dropped."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    segments: list[list[str]] = [[]]
    for token in lexer:
        if token in ("|", "&&", ";", "&", "||"):
            segments.append([])
        else:
            segments[-1].append(token)
    return [s for s in segments if s]


def _alternatives(token: str) -> list[str]:
    """``a|b`` and ``[--x|--y]`` as their alternatives, brackets of optional parts removed."""
    return [t for t in token.strip("[]").split("|") if t]


def parse_commands(line: str, source: str = "") -> list[Command]:
    """The tickwise, make and benchmark commands in one shell line (synopsis notation expanded)."""
    found: list[Command] = []
    for tokens in _segments(line):
        while tokens and re.match(r"^[A-Z_][A-Z0-9_]*=", tokens[0]):
            tokens = tokens[1:]
        if not tokens:
            continue
        program, args = Path(tokens[0]).name, tokens[1:]
        if program == "tickwise":
            words: list[list[str]] = []
            options: list[str] = []
            for token in args:
                if token.lstrip("[").startswith("-"):
                    options += [t.split("=")[0] for t in _alternatives(token) if t.startswith("--")]
                elif not options and not token.startswith("["):
                    words.append(_alternatives(token))
            for choice in itertools.product(*words):
                found.append(Command("tickwise", tuple(choice), tuple(options), source))
        elif program == "make":
            for target in args:
                if not target.startswith("-") and "=" not in target:
                    found.append(Command("make", (target,), (), source))
        elif program.startswith("python"):
            module = None
            if len(args) >= 2 and args[0] == "-m" and args[1].startswith("benchmarks."):
                module, rest = args[1], args[2:]
            elif args and re.fullmatch(r"benchmarks/\w+\.py", args[0]):
                module, rest = args[0][: -len(".py")].replace("/", "."), args[1:]
            if module is not None:
                options = [t.split("=")[0] for t in rest if t.startswith("--")]
                found.append(Command("benchmarks", (module,), tuple(options), source))
    return found


def page_commands() -> list[Command]:
    """Every command shown in the README and docs/, in page order, each once."""
    seen: dict[Command, Command] = {}
    for page in PAGES:
        for line in shell_lines(page.read_text()):
            for command in parse_commands(line, f"{page.relative_to(ROOT)}: {line}"):
                seen.setdefault(command, command)
    return list(seen.values())


class CommandError(Exception):
    """A command a page shows that the program would refuse."""


def _subcommands(parser: argparse.ArgumentParser) -> argparse._SubParsersAction | None:
    return next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)


def resolve(words: tuple[str, ...], options: tuple[str, ...]) -> int:
    """Check ``tickwise <words> <options>`` against the real parser; return how many of the
    words are positional arguments of the sub-command they name.

    Raises CommandError naming the first sub-command, positional choice or option that does
    not exist.
    """
    rest = list(words)
    alias = ALIASES.get(tuple(rest[:2]))  # type: ignore[call-overload]
    if alias is not None:
        rest = alias + rest[2:]
    parser, path = build_parser(), []
    while rest and (sub := _subcommands(parser)) is not None:
        name = rest.pop(0)
        if name not in sub.choices:
            raise CommandError(f"tickwise {' '.join(path)}: no sub-command {name!r}")
        parser, path = sub.choices[name], [*path, name]
    positionals = [a for a in parser._actions if not a.option_strings]
    room = sum(
        a.nargs if isinstance(a.nargs, int) else 1 if a.nargs in (None, "?") else len(rest)
        for a in positionals
    )
    if len(rest) > room:
        raise CommandError(f"tickwise {' '.join(path)}: unexpected words {rest}")
    for word, action in zip(rest, positionals, strict=False):
        if action.choices is not None and word not in action.choices:
            raise CommandError(f"tickwise {' '.join(path)}: {word!r} not one of {action.choices}")
    for option in options:
        if option not in parser._option_string_actions:
            raise CommandError(f"tickwise {' '.join(path)}: no option {option}")
    return len(rest)


@cache
def help_text(argv: tuple[str, ...]) -> tuple[int, str]:
    """Exit code and output of ``argv --help``, run as its own process from the repository."""
    proc = subprocess.run(
        [sys.executable, *argv, "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=HELP_TIMEOUT_S,
    )
    return proc.returncode, proc.stdout + proc.stderr


def help_problems(argv: tuple[str, ...], options: tuple[str, ...]) -> list[str]:
    """What is wrong with ``argv``: ``--help`` fails, or the help lacks one of ``options``."""
    code, text = help_text(argv)
    shown = " ".join(
        ("tickwise", *argv[2:]) if argv[:2] == ("-m", "tickwise.streams.cli") else argv
    )
    if code != 0:
        return [f"{shown} --help exited {code}: {text.strip()[-300:]}"]
    return [
        f"{shown} --help does not list {option}"
        for option in options
        if not re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text)
    ]


def make_problems(target: str) -> list[str]:
    """What is wrong with ``make <target>``: the Makefile has no such target (a dry run)."""
    proc = subprocess.run(
        ["make", "-n", "-C", str(ROOT), target], capture_output=True, text=True, timeout=60
    )
    return [] if proc.returncode == 0 else [f"make {target}: {proc.stderr.strip()}"]


def _tickwise_checks() -> dict[tuple[str, ...], tuple[str, ...]]:
    """The words to run ``--help`` on, each with every option the pages use there."""
    checks: dict[tuple[str, ...], set[str]] = {}
    for command in page_commands():
        if command.program != "tickwise":
            continue
        try:
            positional = resolve(command.words, ())
        except CommandError:
            continue  # reported by test_every_tickwise_command_resolves_in_the_parser
        # the words as written up to the sub-command, so an alias spelling is run too
        spelled = command.words[: len(command.words) - positional]
        checks.setdefault(spelled, set()).update(command.options)
    return {words: tuple(sorted(options)) for words, options in checks.items()}


def test_pages_show_commands_of_every_kind() -> None:
    commands = page_commands()
    programs = {c.program for c in commands}
    assert programs == {"tickwise", "make", "benchmarks"}
    assert Command("make", ("demo",)) in commands and Command("make", ("test",)) in commands
    first = shell_lines((ROOT / "README.md").read_text())[:2]
    assert [c for line in first for c in parse_commands(line)] == [
        Command("make", ("demo",)),
        Command("make", ("test",)),
    ]


def test_every_tickwise_command_resolves_in_the_parser() -> None:
    problems = []
    for command in page_commands():
        if command.program == "tickwise":
            try:
                resolve(command.words, command.options)
            except CommandError as exc:
                problems.append(f"{exc}\n    shown in {command.source}")
    assert problems == []


@pytest.mark.parametrize(
    ("words", "options"),
    [
        pytest.param(words, options, id=" ".join(("tickwise", *words)))
        for words, options in sorted(_tickwise_checks().items())
    ],
)
def test_tickwise_help_runs_and_lists_every_option(
    words: tuple[str, ...], options: tuple[str, ...]
) -> None:
    assert help_problems(("-m", "tickwise.streams.cli", *words), options) == []


def test_every_make_target_exists() -> None:
    targets = sorted({c.words[0] for c in page_commands() if c.program == "make"})
    assert [p for target in targets for p in make_problems(target)] == []


@pytest.mark.slow
def test_every_benchmark_module_answers_help() -> None:
    checks: dict[str, set[str]] = {}
    for command in page_commands():
        if command.program == "benchmarks":
            checks.setdefault(command.words[0], set()).update(command.options)
    problems = [
        p
        for module, options in sorted(checks.items())
        for p in help_problems(("-m", module), tuple(sorted(options)))
    ]
    assert problems == []


BROKEN_PAGE = """
```bash
tickwise topics delete --topic-prefix P      # no such choice
tickwise frobnicate                          # no such command
tickwise model retire tree:v1                # no such sub-command
tickwise feed --synthetic --no-such-option 3 # no such option
tickwise feed synthetic                      # feed takes no word
make no-such-target
python -m benchmarks.no_such_module --ticks 5
```
"""


def test_a_page_naming_what_does_not_exist_fails() -> None:
    blocks, _ = _fences(BROKEN_PAGE)
    commands = [c for line in shell_lines(BROKEN_PAGE) for c in parse_commands(line)]
    assert len(blocks) == 1 and len(commands) == 7
    refused = []
    for command in commands[:5]:
        with pytest.raises(CommandError) as exc:
            resolve(command.words, command.options)
        refused.append(str(exc.value))
    assert "'delete' not one of" in refused[0]
    assert "no sub-command 'frobnicate'" in refused[1]
    assert "tickwise model: no sub-command 'retire'" in refused[2]
    assert refused[3] == "tickwise feed: no option --no-such-option"
    assert refused[4] == "tickwise feed: unexpected words ['synthetic']"
    # the same commands, run as a user would
    assert (
        "invalid choice: 'delete'"
        in help_problems(("-m", "tickwise.streams.cli", "topics", "delete"), ())[0]
    )
    assert help_problems(
        ("-m", "tickwise.streams.cli", "feed"), ("--no-such-option", "--synthetic")
    ) == ["tickwise feed --help does not list --no-such-option"]
    assert make_problems("no-such-target") != []
    assert help_problems(("-m", "benchmarks.no_such_module"), ()) != []


def test_synopsis_notation_is_expanded() -> None:
    line = "tickwise broker start|stop [--port 9092] [--progress|--no-progress] --x=1 | grep a"
    assert parse_commands(line) == [
        Command("tickwise", ("broker", "start"), ("--port", "--progress", "--no-progress", "--x")),
        Command("tickwise", ("broker", "stop"), ("--port", "--progress", "--no-progress", "--x")),
    ]
    env = "TICKWISE_SASL_USERNAME=feed X=1 tickwise feed --synthetic && make bench B=1 # c"
    assert parse_commands(env) == [
        Command("tickwise", ("feed",), ("--synthetic",)),
        Command("make", ("bench",)),
    ]
    assert parse_commands("python benchmarks/models.py --ticks 5000") == [
        Command("benchmarks", ("benchmarks.models",), ("--ticks",))
    ]
    assert parse_commands("docker compose up") == []


# --- links -------------------------------------------------------------------------------


def _anchors(text: str) -> set[str]:
    """Heading anchors as GitHub makes them: lower case, punctuation dropped, spaces to '-'."""
    anchors: set[str] = set()
    _, prose = _fences(text)
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*$", prose, flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        n, anchor = 0, slug
        while anchor in anchors:
            n += 1
            anchor = f"{slug}-{n}"
        anchors.add(anchor)
    return anchors


def link_problems(page: Path, text: str) -> list[str]:
    """Relative links in ``text`` whose file or heading anchor does not exist."""
    problems = []
    _, prose = _fences(text)
    for target in re.findall(r"\]\(([^)\s]+)\)", prose):
        if re.match(r"^[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            problems.append(f"{page.name}: {target}: no file {path}")
        elif anchor and file.suffix == ".md" and anchor not in _anchors(file.read_text()):
            problems.append(f"{page.name}: {target}: no heading #{anchor} in {file.name}")
    return problems


def test_every_link_in_the_pages_lands() -> None:
    assert [p for page in PAGES for p in link_problems(page, page.read_text())] == []


def test_a_link_to_a_missing_heading_fails() -> None:
    page = ROOT / "docs" / "OPERATIONS.md"
    assert "delivery-guarantees-exactly-once-by-kafka-transactions-and-replay" in _anchors(
        page.read_text()
    )
    broken = "[a](SECURITY.md#nowhere) [b](NOPE.md) [c](#commands) [d](https://x.y/#z) [e](#x)"
    assert link_problems(page, broken) == [
        "OPERATIONS.md: SECURITY.md#nowhere: no heading #nowhere in SECURITY.md",
        "OPERATIONS.md: NOPE.md: no file NOPE.md",
        "OPERATIONS.md: #x: no heading #x in OPERATIONS.md",
    ]
