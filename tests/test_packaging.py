"""What a user gets from `pip install rowforge` (the wheel) and from the Makefile's installs.

The wheel is built once per session (hatchling from the dev install, no build isolation, so no
index is needed) and installed without dependencies into a fresh virtualenv that borrows this
environment's packages, then run from a directory outside the source tree.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "support_dialogues.yaml"
PACKAGED = ROOT / "src" / "rowforge" / "demo_data" / "support_dialogues.yaml"
SPECS = sorted(path.name for path in (ROOT / "specs").glob("*.yaml"))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("wheel")
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    build = subprocess.run(
        [*command, "--quiet", "-w", str(directory), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    (path,) = directory.glob("rowforge-*.whl")
    return path


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A virtualenv holding the wheel; its dependencies come from this environment by a .pth
    line (which does not process this environment's own .pth files, so the editable install of
    the source tree stays out). Yields the venv's bin directory."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps"]
    done = subprocess.run([*install, "--quiet", str(wheel)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(purelib, "zz_borrowed_dependencies.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8"
    )
    yield venv / "bin"


def run_installed(bin_dir: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`rowforge ARGS` from the installed wheel, in `cwd`, with its bin directory on PATH."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(
        ["rowforge", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


# -- the demo's config -------------------------------------------------------------------------


def referenced_paths(node: Any) -> Iterator[str]:
    """Every `path:` value of a config (seed files), relative to the config's directory."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "path" and isinstance(value, str):
                yield value
            else:
                yield from referenced_paths(value)
    elif isinstance(node, list):
        for item in node:
            yield from referenced_paths(item)


def test_the_packaged_demo_config_is_the_example_byte_for_byte() -> None:
    assert PACKAGED.read_bytes() == EXAMPLE.read_bytes(), (
        "src/rowforge/demo_data/support_dialogues.yaml differs from "
        "examples/support_dialogues.yaml: copy the example over it"
    )


def test_every_file_the_demo_config_references_is_packaged_too() -> None:
    for relative in referenced_paths(yaml.safe_load(PACKAGED.read_text(encoding="utf-8"))):
        assert (PACKAGED.parent / relative).read_bytes() == (
            EXAMPLE.parent / relative
        ).read_bytes(), relative


def test_the_demo_loads_its_config_from_the_package() -> None:
    import rowforge
    from rowforge import demo

    assert Path(rowforge.__file__).parent / "demo_data" / PACKAGED.name == demo.EXAMPLE
    assert demo.EXAMPLE.is_file()


# -- the wheel ---------------------------------------------------------------------------------


def test_the_wheel_carries_the_specs_the_demo_config_and_the_script(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = archive.read("rowforge-0.1.0.dist-info/entry_points.txt").decode()
    for spec in SPECS:
        assert f"rowforge/specs/{spec}" in names
    assert {"run.yaml", "row_group.yaml", "worker.yaml", "cell.yaml"} <= set(SPECS)
    assert "rowforge/demo_data/support_dialogues.yaml" in names
    assert "rowforge/cli.py" in names and "rowforge/hints.py" in names
    assert "rowforge = rowforge.cli:app" in entry_points
    assert not any(name.startswith(("tests/", "examples/", "docs/")) for name in names)


def test_the_installed_wheel_runs_the_demo_outside_the_source_tree(
    installed: Path, tmp_path: Path
) -> None:
    version = run_installed(installed, tmp_path, "--version")
    assert (version.returncode, version.stdout) == (0, "rowforge 0.1.0\n"), version.stderr
    demo = run_installed(installed, tmp_path, "demo", "-n", "20", "-o", "out")
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "rowforge demo: completed: 20 of 20 records written" in demo.stderr  # the display's
    assert (tmp_path / "out" / "metadata.json").is_file()
    assert str(ROOT) not in demo.stdout, "nothing comes from the source checkout"
    hint = demo.stdout.split("(try: ", 1)[1].split(")\n", 1)[0]
    assert shlex.split(hint)[:2] == ["rowforge", "preview"], hint
    preview = run_installed(installed, tmp_path, *shlex.split(hint)[1:])
    assert preview.returncode == 0, preview.stdout + preview.stderr
    assert "completed: 3 records (nothing written)" in preview.stdout


def test_the_installed_diagrams_command_writes_into_the_working_directory(
    installed: Path, tmp_path: Path
) -> None:
    package = Path(
        subprocess.run(
            [str(installed / "python"), "-c", "import rowforge; print(rowforge.__file__)"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    ).parent
    assert ROOT not in package.parents
    result = run_installed(installed, tmp_path, "diagrams")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == "wrote state-machines.md\n"
    assert (tmp_path / "state-machines.md").read_text(encoding="utf-8") == (
        ROOT / "docs" / "state-machines.md"
    ).read_text(encoding="utf-8")
    assert not list(package.rglob("*.md")), "nothing written into the installed package"


# -- the Makefile's installs -------------------------------------------------------------------


def make_dry_run(target: str, venv: Path) -> str:
    """What `make TARGET` would run on a fresh clone (no venv yet at `venv`)."""
    result = subprocess.run(
        ["make", "--dry-run", target, f"VENV={venv}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # under `make test`, make's own "Entering directory" lines come along; they are not commands
    return "".join(line for line in result.stdout.splitlines(True) if not line.startswith("make["))


def test_make_demo_installs_only_the_runtime_dependencies(tmp_path: Path) -> None:
    commands = make_dry_run("demo", tmp_path / "venv")
    assert f"{tmp_path}/venv/bin/python -m pip install --quiet -e .\n" in commands
    assert "[dev]" not in commands
    assert commands.rstrip().endswith(f"{tmp_path}/venv/bin/rowforge demo")


@pytest.mark.parametrize("target", ["test", "lint"])
def test_make_test_and_lint_install_the_dev_extra(tmp_path: Path, target: str) -> None:
    commands = make_dry_run(target, tmp_path / "venv")
    assert f"{tmp_path}/venv/bin/python -m pip install --quiet -e '.[dev]'\n" in commands
