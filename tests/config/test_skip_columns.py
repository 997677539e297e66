"""`skip: {when, value}` and `propagate_skip` on config columns (data-designer's semantics)."""

from __future__ import annotations

from typing import Any

import pytest

from rowforge.api import preview
from rowforge.config.dataset import DatasetConfig
from rowforge.errors import ConfigError
from rowforge.scheduler import RunConfig


def config(**analysis: Any) -> DatasetConfig:
    return DatasetConfig.from_dict({
        "models": [{"alias": "m"}],
        "columns": [
            {"type": "integer", "name": "stars", "low": 1, "high": 5},
            {"type": "llm_text", "name": "analysis", "model": "m", "prompt": "Why {{ stars }}?",
             **analysis},
            {"type": "expression", "name": "actions", "template": "act on {{ analysis }}"},
            {"type": "expression", "name": "summary", "template": "{{ stars }}/{{ analysis }}",
             "propagate_skip": False},
        ],
    })


@pytest.mark.parametrize("engine", ["async", "sync"])
def test_skipped_rows_keep_the_value_and_dependents_skip_unless_told_not_to(engine: str) -> None:
    result = preview(
        config(skip={"when": "{{ stars > 2 }}", "value": "n/a"}), 40,
        run_config=RunConfig(engine=engine),
    )
    frame = result.dataset
    high, low = frame[frame["stars"] > 2], frame[frame["stars"] <= 2]
    assert len(high) and len(low) and len(frame) == 40
    assert (high["analysis"] == "n/a").all() and high["actions"].isna().all()
    assert (high["summary"] == high["stars"].astype(str) + "/n/a").all()
    assert low["analysis"].str.startswith("Regarding").all()
    assert result.metadata["skipped_cells"]["analysis"] == len(high)
    assert result.metadata["skipped_cells"]["actions"] == len(high)


@pytest.mark.parametrize(
    ("when", "skipped"),
    [("{{ stars > 9 }}", 0), ("{{ stars * 0 }}", 0), ("{{ stars }}", 40),
     ("{{ 'yes' if stars else '' }}", 40), ("{{ '' if stars else 'x' }}", 0),
     ("{{ None if stars else 1 }}", 0)],
)
def test_when_is_true_as_data_designer_reads_its_value(when: str, skipped: int) -> None:
    result = preview(config(skip={"when": when}), 40)
    assert result.metadata["skipped_cells"]["analysis"] == skipped


@pytest.mark.parametrize(
    ("column", "message"),
    [
        ({"type": "integer", "name": "x", "skip": {"when": "{{ stars }}"}},
         "columns[4] 'x': unknown fields ['skip'] for a 'integer' column"),
        ({"type": "expression", "name": "x", "template": "{{ stars }}", "skip": "{{ stars }}"},
         "columns[4] 'x'.skip: must be a mapping {when, value}"),
        ({"type": "expression", "name": "x", "template": "{{ stars }}",
          "skip": {"when": "{{ stars }}", "else": 1}},
         "columns[4] 'x'.skip: unknown fields ['else']"),
        ({"type": "expression", "name": "x", "template": "{{ stars }}",
          "skip": {"when": "{{ 1 }}"}},
         "columns[4] 'x'.skip.when: must read at least one column"),
        ({"type": "expression", "name": "x", "template": "{{ stars }}",
          "skip": {"when": "{{ stars"}},
         "columns[4] 'x'.skip.when: bad template"),
        ({"type": "expression", "name": "x", "template": "{{ stars }}",
          "skip": {"when": "{{ nope }}"}},
         "columns[4] 'x': refers to unknown column 'nope'"),
        ({"type": "expression", "name": "x", "template": "{{ stars }}",
          "skip": {"when": "{{ stars }}", "value": [1]}},
         "columns[4] 'x'.skip.value: must be a single value"),
        ({"type": "expression", "name": "x", "template": "{{ stars }}", "propagate_skip": "no"},
         "columns[4] 'x'.propagate_skip: must be a boolean"),
    ],
)
def test_bad_skips_name_the_field(column: dict[str, Any], message: str) -> None:
    raw = config().to_dict()
    raw["columns"].append(column)
    with pytest.raises(ConfigError) as raised:
        DatasetConfig.from_dict(raw)
    assert str(raised.value).startswith(message), str(raised.value)
