""".ci/provision: the one place that names and installs the system packages the commands need.

Each test runs the real script on a fake machine: a PATH of small stub programs (``id`` says who
we are, ``apt-get`` records its calls and "installs" by creating the stubs its packages provide)
and a directory standing for ``/`` where the tests' fixed paths (chromium, initdb) are looked for.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROVISION = ROOT / ".ci" / "provision"
BASH = shutil.which("bash") or "/bin/bash"
# Real programs the scripts under test call besides the stubs.
REAL_TOOLS = ("bash", "date", "dirname", "grep")
# Where each Debian package puts what the script looks for: on PATH, or under the fake root.
PROVIDES = {
    "openjdk-17-jre-headless": "bin/java",
    "maven": "bin/mvn",
    "python3": "bin/python3",
    "python3-venv": "",
    "make": "bin/make",
    "docker-compose": "bin/docker-compose",
    "postgresql": "root/usr/lib/postgresql/15/bin/initdb",
    "chromium": "root/usr/bin/chromium",
    "chromium-driver": "root/usr/bin/chromedriver",
    "openssl": "root/usr/bin/openssl",
    "prometheus": "bin/promtool",
}
BASE = ("openjdk-17-jre-headless", "maven", "python3", "make")
TEST_PACKAGES = ("postgresql", "chromium", "chromium-driver", "openssl", "prometheus")


class FakeMachine:
    """A PATH of stubs and a fake ``/``, with a log of what the stubs were asked to do."""

    def __init__(self, home: Path, uid: int, installed: tuple[str, ...]) -> None:
        self.home = home
        self.bin = home / "bin"
        self.root = home / "root"
        self.log = home / "calls.log"
        self.bin.mkdir()
        self.root.mkdir()
        for tool in REAL_TOOLS:
            (self.bin / tool).symlink_to(shutil.which(tool) or f"/bin/{tool}")
        # what each package installs, ready for the apt-get stub to copy into place (the venv
        # package adds ensurepip, which the python3 stub already answers for)
        for package, target in PROVIDES.items():
            if target:
                self.stub(f"store/{package}", self._logging(target))
        self.stub("id", f'echo "{uid}"')
        install = shutil.which("install") or "/usr/bin/install"
        copies = "\n".join(
            f"    {package}) {install} -D {home}/store/{package} {home}/{target} ;;"
            for package, target in PROVIDES.items()
            if target
        )
        self.stub(
            "apt-get",
            f'echo "apt-get $* DEBIAN_FRONTEND=${{DEBIAN_FRONTEND:-}}" >> {self.log}\n'
            f'[ "$1" = install ] || exit 0\n'
            f'for p in "$@"; do case "$p" in\n{copies}\nesac; done',
        )
        for package in installed:
            if PROVIDES[package]:
                self.stub(PROVIDES[package], self._logging(PROVIDES[package]))

    def _logging(self, target: str) -> str:
        return f'echo "{Path(target).name} $* CI=${{CI:-}}" >> {self.log}'

    def stub(self, relative: str, body: str) -> None:
        """An executable at ``relative`` (under bin/ if no directory is given) running ``body``."""
        path = self.home / relative if "/" in relative else self.bin / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"#!{BASH}\n{body}\n")
        path.chmod(0o755)

    def run(self, *argv: str, python: str = "python3") -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": str(self.bin),
            "HOME": str(self.home),
            "PYTHON": python,
            "TICKWISE_PROVISION_ROOT": str(self.root),
        }
        return subprocess.run(
            [BASH, *argv], capture_output=True, text=True, env=env, timeout=60, check=False
        )

    def calls(self, program: str = "") -> list[str]:
        """The stubs' calls in order, those of ``program`` only when it is given."""
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        return [line for line in lines if line.startswith(program)]


def test_check_names_what_is_missing_and_the_exact_command(tmp_path: Path) -> None:
    fake = FakeMachine(tmp_path, uid=0, installed=BASE)
    result = fake.run(str(PROVISION), "--check", "test")
    assert result.returncode == 1
    for package in TEST_PACKAGES:
        assert f"  {package} " in result.stderr
    assert "maven" not in result.stderr and "openjdk" not in result.stderr
    assert (
        "  apt-get update && apt-get install -y"
        " postgresql chromium chromium-driver openssl prometheus\n" in result.stderr
    )
    assert fake.calls("apt-get") == [], "--check installs nothing"


def test_not_root_prints_the_command_with_sudo_and_stops(tmp_path: Path) -> None:
    fake = FakeMachine(tmp_path, uid=1000, installed=(*BASE, "postgresql"))
    result = fake.run(str(PROVISION), "test")
    assert result.returncode == 1
    assert (
        "  sudo apt-get update && sudo apt-get install -y"
        " chromium chromium-driver openssl prometheus\n" in result.stderr
    )
    assert "postgresql" not in result.stderr
    assert fake.calls("apt-get") == []


def test_nothing_missing_is_silent(tmp_path: Path) -> None:
    fake = FakeMachine(tmp_path, uid=1000, installed=(*BASE, *TEST_PACKAGES))
    result = fake.run(str(PROVISION), "test")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_demo_needs_neither_browser_nor_postgresql(tmp_path: Path) -> None:
    fake = FakeMachine(tmp_path, uid=1000, installed=("python3",))
    result = fake.run(str(PROVISION), "--check", "demo")
    assert result.returncode == 1
    assert "apt-get install -y openjdk-17-jre-headless maven\n" in result.stderr
    assert "chromium" not in result.stderr and "postgresql" not in result.stderr


@pytest.mark.parametrize(
    ("installed", "python", "wanted"),
    [
        (("openjdk-17-jre-headless", "maven"), "python3", "python3 python3-venv"),
        ((*BASE,), "python3-without-venv", "python3-venv"),
    ],
    ids=["no-python", "python-without-ensurepip"],
)
def test_the_venv_module_is_asked_for(
    tmp_path: Path, installed: tuple[str, ...], python: str, wanted: str
) -> None:
    fake = FakeMachine(tmp_path, uid=1000, installed=installed)
    fake.stub("python3-without-venv", 'case "$*" in *ensurepip*) exit 1 ;; esac')
    result = fake.run(str(PROVISION), "--check", "demo", python=python)
    assert result.returncode == 1
    assert f"apt-get install -y {wanted}\n" in result.stderr


def test_root_installs_what_is_missing_noninteractively(tmp_path: Path) -> None:
    fake = FakeMachine(tmp_path, uid=0, installed=BASE)
    result = fake.run(str(PROVISION), "test")
    assert result.returncode == 0, result.stderr
    assert fake.calls("apt-get") == [
        "apt-get update -qq DEBIAN_FRONTEND=noninteractive",
        "apt-get install -y -qq postgresql chromium chromium-driver openssl prometheus "
        "DEBIAN_FRONTEND=noninteractive",
    ]
    assert fake.run(str(PROVISION), "--check", "test").returncode == 0


def test_root_fails_when_apt_get_leaves_something_missing(tmp_path: Path) -> None:
    fake = FakeMachine(tmp_path, uid=0, installed=BASE)
    fake.stub("apt-get", "exit 0")  # "succeeds" and installs nothing
    result = fake.run(str(PROVISION), "test")
    assert result.returncode == 1
    assert (
        "still missing after apt-get install:"
        " postgresql chromium chromium-driver openssl prometheus" in (result.stderr)
    )


def test_unknown_profile_is_a_usage_error(tmp_path: Path) -> None:
    result = FakeMachine(tmp_path, uid=0, installed=()).run(str(PROVISION), "everything")
    assert result.returncode == 2 and "usage" in result.stderr


def test_ci_run_provisions_before_make_then_validates_compose_and_runs_make_test(
    tmp_path: Path,
) -> None:
    """On a bare machine, .ci/run installs make and the rest through .ci/provision first."""
    fake = FakeMachine(tmp_path, uid=0, installed=("openjdk-17-jre-headless", "python3"))
    result = fake.run(str(ROOT / ".ci" / "run"))
    assert result.returncode == 0, result.stdout + result.stderr
    calls = fake.calls()
    installs = fake.calls("apt-get")
    assert installs == [
        "apt-get update -qq DEBIAN_FRONTEND=noninteractive",
        "apt-get install -y -qq make maven postgresql chromium chromium-driver openssl prometheus "
        "docker-compose DEBIAN_FRONTEND=noninteractive",
    ]
    assert fake.calls("make") == ["make test CI=true"]
    validated = "docker-compose -f docker-compose.yml config -q CI="
    assert calls.index(installs[-1]) < calls.index(validated) < calls.index("make test CI=true")


@pytest.mark.parametrize("target", ["test", "demo"])
def test_the_readme_commands_provision_before_anything_else(target: str) -> None:
    """`make -n` lists the recipe lines in order: provisioning comes before the venv and tests."""
    listed = subprocess.run(
        ["make", "-n", "-C", str(ROOT), "--no-print-directory", target],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, "MAKEFLAGS": ""},
    ).stdout.splitlines()
    assert listed[0].endswith(f"bash .ci/provision {target}")
    assert sum(".ci/provision" in line for line in listed) == 1


def test_apt_get_is_called_only_from_the_provision_script() -> None:
    """One place names system packages: the Makefile and the other CI scripts call it."""
    others = [ROOT / "Makefile", *sorted((ROOT / ".ci").iterdir())]
    assert [p.name for p in others if p != PROVISION and "apt-get" in p.read_text()] == []
    assert ".ci/provision ci" in (ROOT / ".ci" / "run").read_text()
