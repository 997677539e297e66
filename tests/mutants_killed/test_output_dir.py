"""Survivors of `make mutants` in rowforge.storage.output_dir and sinks, killed: what a refusal
tells the user, and how a new output appears where its directory cannot be renamed over."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pandas as pd
import pytest

from rowforge.errors import ConfigError
from rowforge.hints import runnable_command
from rowforge.storage import output_dir
from rowforge.storage.metadata import METADATA_FILE
from rowforge.storage.output_dir import claim_output_dir
from rowforge.storage.sinks import MemorySink


def refusal(output: Path) -> str:
    with pytest.raises(ConfigError) as error:
        claim_output_dir(output)
    return str(error.value)


def holding(directory: Path, *names: str) -> Path:
    directory.mkdir()
    for name in names:
        (directory / name).write_text("x")
    return directory


def test_a_directory_of_other_files_is_refused_naming_it_and_its_first_three_files(
    tmp_path: Path,
) -> None:
    output = holding(tmp_path / "out", "a", "b", "c", "d", "e")
    assert refusal(output) == (
        f"output directory {str(output)!r} is not empty (it holds 'a', 'b', 'c' and 2 more); "
        "choose an empty or new directory"
    )


@pytest.mark.parametrize(
    ("names", "listing"),
    [(["a", "b", "c"], "'a', 'b', 'c'"), (["a", "b", "c", "d"], "'a', 'b', 'c' and 1 more")],
)
def test_the_listing_counts_only_the_files_it_does_not_show(
    tmp_path: Path, names: list[str], listing: str
) -> None:
    assert f"(it holds {listing});" in refusal(holding(tmp_path / "out", *names))


def test_an_earlier_output_is_refused_saying_how_to_replace_or_resume_it(tmp_path: Path) -> None:
    output = holding(tmp_path / "out", METADATA_FILE)
    assert refusal(output) == (
        f"output directory {str(output)!r} already holds a rowforge output; a new build would "
        "mix its rows with the earlier ones. Pass --overwrite (overwrite=True) to replace it, "
        f"or run '{runnable_command('resume', output)}' to finish the earlier build"
    )


def write_first_files(directory: Path) -> None:
    for name in ("config.yaml", METADATA_FILE, "recipe.json"):
        (directory / name).write_text(name)


@pytest.fixture
def directories_cannot_be_renamed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """os.replace refuses directories (as for a mount point); returns the files it moved."""
    moved: list[str] = []
    real_replace = os.replace

    def replace(source: os.PathLike[str], target: os.PathLike[str]) -> None:
        if Path(source).is_dir():
            raise OSError(errno.EBUSY, "Device or resource busy", str(target))
        real_replace(source, target)
        moved.append(Path(target).name)

    monkeypatch.setattr(output_dir.os, "replace", replace)
    return moved


def test_where_the_output_cannot_be_renamed_over_its_files_move_one_by_one_metadata_last(
    tmp_path: Path, directories_cannot_be_renamed: list[str]
) -> None:
    output = tmp_path / "mountpoint"
    output.mkdir()
    claim_output_dir(output, prepare=write_first_files)
    assert sorted(p.name for p in output.iterdir()) == ["config.yaml", METADATA_FILE, "recipe.json"]
    assert (output / METADATA_FILE).read_text() == METADATA_FILE
    assert directories_cannot_be_renamed[-1] == METADATA_FILE
    assert sorted(directories_cannot_be_renamed) == ["config.yaml", METADATA_FILE, "recipe.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mountpoint"], "staging left behind"


def test_a_failed_rename_to_a_missing_output_is_reported_as_it_was_and_leaves_nothing(
    tmp_path: Path, directories_cannot_be_renamed: list[str]
) -> None:
    output = tmp_path / "out"
    with pytest.raises(OSError) as error:
        claim_output_dir(output, prepare=write_first_files)
    assert error.value.errno == errno.EBUSY
    assert list(tmp_path.iterdir()) == []
    assert directories_cannot_be_renamed == []


def test_a_row_group_written_twice_to_memory_is_refused_naming_it() -> None:
    sink = MemorySink()
    sink.write(7, pd.DataFrame({"a": [1]}, index=[0]))
    with pytest.raises(RuntimeError, match="row group 7 written twice"):
        sink.write(7, pd.DataFrame({"a": [1]}, index=[0]))


def test_a_file_in_the_way_is_refused_naming_it(tmp_path: Path) -> None:
    output = tmp_path / "out"
    output.write_text("x")
    assert refusal(output) == f"output directory {str(output)!r} is a file, not a directory"


def test_overwrite_refuses_a_directory_rowforge_did_not_write(tmp_path: Path) -> None:
    output = holding(tmp_path / "out", "notes.txt")
    with pytest.raises(ConfigError) as error:
        claim_output_dir(output, overwrite=True)
    assert str(error.value) == (
        f"output directory {str(output)!r} is not empty and is not a rowforge output "
        "(it holds 'notes.txt'); --overwrite only replaces an earlier rowforge output. "
        "Choose another directory or empty this one"
    )
    assert (output / "notes.txt").exists()


def test_a_new_output_is_created_with_its_missing_parents(tmp_path: Path) -> None:
    output = tmp_path / "a" / "b" / "out"
    claim_output_dir(output, prepare=write_first_files)
    assert sorted(p.name for p in output.iterdir()) == ["config.yaml", METADATA_FILE, "recipe.json"]
    assert sorted(p.name for p in output.parent.iterdir()) == ["out"]


def test_when_preparing_fails_the_error_is_raised_and_nothing_is_left_behind(
    tmp_path: Path,
) -> None:
    def fail(directory: Path) -> None:
        (directory / "config.yaml").write_text("x")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        claim_output_dir(tmp_path / "out", prepare=fail)
    assert list(tmp_path.iterdir()) == []
