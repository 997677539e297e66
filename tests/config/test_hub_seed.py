"""Seed datasets from the Hugging Face Hub, read from a local cache in the Hub's own layout
with HF_HUB_OFFLINE=1: nothing goes to the network."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from rowforge.api import build
from rowforge.config.data_designer import from_data_designer
from rowforge.config.dataset import DatasetConfig, load_config
from rowforge.config.validate import validate_config
from rowforge.errors import ConfigError
from rowforge.storage.check import first_violation

pytest.importorskip("huggingface_hub", reason="the `huggingface` extra is not installed")

REVISION = "0" * 40


@pytest.fixture
def hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A Hugging Face cache holding dataset `acme/tickets` (two parquet shards and a CSV), as
    `huggingface_hub` lays it out, and the environment of an offline machine using it."""
    cache = tmp_path / "hf-cache"
    repo = cache / "datasets--acme--tickets"
    snapshot = repo / "snapshots" / REVISION
    (snapshot / "data").mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(REVISION)
    pd.DataFrame({"topic": ["billing", "shipping"], "n": [1, 2]}).to_parquet(
        snapshot / "data" / "train-00000-of-00002.parquet")
    pd.DataFrame({"topic": ["returns"], "n": [3]}).to_parquet(
        snapshot / "data" / "train-00001-of-00002.parquet")
    pd.DataFrame({"topic": ["other"], "n": [9]}).to_csv(snapshot / "extra.csv", index=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


def config(path: str) -> DatasetConfig:
    return DatasetConfig.from_dict({"columns": [
        {"type": "seed_dataset", "name": "seed", "path": path, "columns": ["topic", "n"]},
        {"type": "expression", "name": "label", "template": "{{ topic }}-{{ n }}"},
    ]})


def test_a_hub_dataset_seeds_the_rows_from_the_cache(hub_cache: Path, tmp_path: Path) -> None:
    dataset = config("hf://datasets/acme/tickets/data/*.parquet")
    validate_config(dataset)
    result = build(dataset, 6, tmp_path / "out")
    assert result.num_records == 6 and first_violation(tmp_path / "out") is None
    frame = pd.read_parquet(tmp_path / "out" / "parquet-files")
    # both shards, in order, cycled ("ordered" seed rows)
    assert frame["label"].tolist() == ["billing-1", "shipping-2", "returns-3"] * 2


def test_one_file_of_a_hub_dataset_and_a_csv(hub_cache: Path, tmp_path: Path) -> None:
    result = build(config("hf://datasets/acme/tickets/extra.csv"), 2, tmp_path / "out")
    assert result.num_records == 2
    frame = pd.read_parquet(tmp_path / "out" / "parquet-files")
    assert frame["label"].tolist() == ["other-9", "other-9"]


def test_what_the_cache_does_not_hold_is_a_config_error_naming_the_field(hub_cache: Path) -> None:
    with pytest.raises(ConfigError, match=r"columns\[0\] 'seed'.path: cannot get 'acme/nope'"):
        validate_config(config("hf://datasets/acme/nope/data/*.parquet"))
    with pytest.raises(ConfigError, match=r"columns\[0\] 'seed'.path: no files match"):
        validate_config(config("hf://datasets/acme/tickets/data/*.csv"))


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("hf://datasets/acme/data.parquet", "must be hf://datasets/<owner>/<name>/<files>"),
        ("hf://models/acme/tickets/x.parquet", "must be hf://datasets/<owner>/<name>/<files>"),
        ("hf://datasets/acme/tickets/data/*.json", "must name .parquet or .csv files"),
    ],
)
def test_bad_hub_paths_name_the_field(path: str, message: str) -> None:
    with pytest.raises(ConfigError, match=rf"columns\[0\] 'seed'.path: {message}"):
        config(path)


def test_a_hub_path_is_kept_as_written_in_a_config_file(tmp_path: Path) -> None:
    """Not rebased against the config's folder, as a relative local path is."""
    path = tmp_path / "sub" / "config.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(config("hf://datasets/acme/tickets/data/*.parquet").to_dict()))
    (seed, _) = load_config(path).columns
    assert seed.path == "hf://datasets/acme/tickets/data/*.parquet"  # type: ignore[attr-defined]


def test_data_designers_hub_seed_source_converts() -> None:
    raw = {"data_designer": {
        "columns": [{"name": "topic", "column_type": "seed-dataset"}],
        "seed_config": {
            "source": {"seed_type": "hf", "path": "datasets/acme/tickets/data/*.parquet"},
            "sampling_strategy": "ordered",
        },
    }}
    (seed,) = from_data_designer(raw)["columns"]
    assert seed["path"] == "hf://datasets/acme/tickets/data/*.parquet"
    raw["data_designer"]["seed_config"]["source"]["token"] = "hf_secret"
    with pytest.raises(ConfigError, match=r"seed_config\.source\.token"):
        from_data_designer(raw)
