"""The wheel installs under the ``tickwise`` namespace and lives beside PyPI's ``schemas`` and
``replay``.

The repository keeps its folders ``streams/``, ``schemas/`` and ``replay/``; installed they
become ``tickwise.streams``, ``tickwise.schemas`` and ``tickwise.replay``. PyPI has packages named
``schemas`` and ``replay``: a wheel that installed those names would overwrite them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc")
FOLDERS = {
    "streams": "tickwise.streams",
    "schemas": "tickwise.schemas",
    "replay": "tickwise.replay",
}


def setuptools_config() -> dict:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_package_folder_is_listed_under_the_namespace() -> None:
    """A new package folder left out of pyproject.toml would be missing from the wheel."""
    found = set()
    for folder, name in FOLDERS.items():
        for init in (REPO_ROOT / folder).rglob("__init__.py"):
            found.add(".".join((name, *init.parent.relative_to(REPO_ROOT / folder).parts)))
    config = setuptools_config()
    assert set(config["packages"]) == found
    assert config["package-dir"] == {name: folder for folder, name in FOLDERS.items()}


def run(argv: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        argv,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": "", **env},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, f"{argv}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # built from a copy: pip builds in the source tree and would leave build/ in the checkout
    source = out / "source"
    for name in (*FOLDERS, "pyproject.toml", "README.md"):
        copy = shutil.copytree if (REPO_ROOT / name).is_dir() else shutil.copy2
        copy(
            REPO_ROOT / name,
            source / name,
            **({"ignore": IGNORE} if copy is shutil.copytree else {}),
        )
    run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(source)],
        cwd=out,
    )
    (path,) = out.glob("tickwise-*.whl")
    return path


def test_the_wheel_holds_only_the_namespace_with_its_data(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names if not name.startswith("tickwise-")}
    assert top == {"tickwise"}
    assert "tickwise/__init__.py" not in names  # a namespace: other distributions may add to it
    assert "tickwise/schemas/json/clean_tick.schema.json" in names
    assert any(name.startswith("tickwise/streams/console/static/") for name in names)
    # the charting library ships inside the package, with its licence beside it
    uplot = "tickwise/streams/console/static/uplot/"
    for name in ("uPlot.iife.min.js", "uPlot.min.css", "LICENSE"):
        assert uplot + name in names, name


def test_the_page_loads_nothing_from_outside_the_console() -> None:
    """Every script and stylesheet the page names is served by the console from the package."""
    static = REPO_ROOT / "streams" / "console" / "static"
    page = (static / "index.html").read_text()
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert "/static/uplot/uPlot.iife.min.js" in assets
    for asset in assets:
        assert asset.startswith("/static/") and (static / asset.removeprefix("/static/")).is_file()
    assert "MIT" in (static / "uplot" / "LICENSE").read_text()


@pytest.mark.slow
def test_installed_beside_pypi_schemas_and_replay(wheel: Path, tmp_path: Path) -> None:
    """A fresh venv holds PyPI's ``schemas`` and ``replay`` and the wheel (installed without
    ``-e``); the command line, a small backtest, the schema files and the console's assets all
    run from the installed package, and the other two packages keep their own files.

    The libraries tickwise depends on come from this interpreter's site-packages through a .pth
    line (a .pth file in that folder, such as an editable install's, is not processed), so the
    test needs no download of numba or river.
    """
    venv = tmp_path / "fresh"
    run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path)
    python = venv / "bin" / "python"
    run([str(python), "-m", "pip", "install", "-q", "schemas", "replay"], cwd=tmp_path)
    run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], cwd=tmp_path)
    site = Path(
        run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            cwd=tmp_path,
        ).stdout.strip()
    )
    (site / "zz_tickwise_deps.pth").write_text(sysconfig.get_path("purelib") + "\n")

    # PyPI's packages keep their files (its `schemas` is Python 2 code, so it is read, not run)
    assert "Schema violation" in (site / "schemas" / "__init__.py").read_text()
    assert (site / "replay" / "__init__.py").exists()

    probe = (
        "import tickwise.streams.cli as cli, tickwise.schemas as s, tickwise.replay as r\n"
        "from tickwise.streams.console.server import STATIC\n"
        "print(cli.__file__); print(s.__file__); print(r.__file__)\n"
        "print(sorted(p.name for p in STATIC.iterdir()))\n"
    )
    files, schemas_file, replay_file, assets = run(
        [str(python), "-c", probe], cwd=tmp_path
    ).stdout.splitlines()
    for path in (files, schemas_file, replay_file):
        assert Path(path).is_relative_to(site), path
    assert "index.html" in assets

    tickwise = str(venv / "bin" / "tickwise")
    assert "backtest" in run([tickwise, "--help"], cwd=tmp_path).stdout
    run([tickwise, "schemas", "check"], cwd=tmp_path)
    out = tmp_path / "bt"
    run(
        [tickwise, "backtest", "--synthetic", "--count", "400", "--out", str(out), "--no-progress"],
        cwd=tmp_path,
    )
    assert (out / "report.json").exists()
