"""llm_judge columns: a rubric of scores, a verdict per score (reasoning and one option)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from rowforge.api import build, preview
from rowforge.config.columns import LLMJudgeColumn
from rowforge.config.compile import _as_structured
from rowforge.config.dataset import DatasetConfig
from rowforge.errors import ConfigError
from rowforge.storage.check import first_violation

SCORES = [
    {"name": "helpfulness", "description": "Does it help? {not a template}",
     "options": {1: "no", 2: "somewhat", 3: "yes"}},
    {"name": "tone", "description": "Politeness", "options": {"polite": "kind", "rude": "harsh"}},
]


def judge(**fields: Any) -> LLMJudgeColumn:
    return LLMJudgeColumn(**{"name": "verdict", "model": "judge", "prompt": "Judge {{ answer }}.",
                             "scores": SCORES, **fields})


def config() -> DatasetConfig:
    return DatasetConfig.from_dict({
        "models": [{"alias": "judge"}],
        "columns": [
            {"type": "category", "name": "answer", "values": ["yes", "no"]},
            {"type": "llm_judge", "name": "verdict", "model": "judge",
             "prompt": "Judge {{ answer }}.", "scores": SCORES},
        ],
    })


def test_a_verdict_has_a_reasoning_and_an_allowed_score_per_score(tmp_path: Path) -> None:
    result = build(config(), 30, tmp_path / "out")
    assert result.num_records == 30 and first_violation(tmp_path / "out") is None
    frame = pd.read_parquet(tmp_path / "out" / "parquet-files")
    for verdict in frame["verdict"]:
        assert verdict["helpfulness"]["score"] in (1, 2, 3)
        assert isinstance(verdict["helpfulness"]["score"], int)  # integers stay integers
        assert verdict["tone"]["score"] in ("polite", "rude")
        assert isinstance(verdict["tone"]["reasoning"], str)
    assert len(preview(config(), 3).dataset) == 3


def test_the_rubric_is_added_to_the_prompt_as_plain_text() -> None:
    structured = _as_structured(judge())
    assert structured.prompt.startswith("Judge {{ answer }}.")
    assert "{% raw %}" in structured.prompt  # the rubric's braces are not template syntax
    assert "- helpfulness: Does it help? {not a template}" in structured.prompt
    assert "  * 2: somewhat" in structured.prompt
    assert structured.dependencies() == {"answer"}
    schema = structured.output_schema
    assert schema["required"] == ["helpfulness", "tone"]
    assert schema["properties"]["helpfulness"]["properties"]["score"] == {
        "type": "integer", "enum": [1, 2, 3]}


def test_integer_options_written_as_text_read_back_as_integers() -> None:
    column = judge(scores=[{"name": "q", "description": "", "options": {"1": "a", "x": "b"}}])
    assert list(column.scores[0]["options"]) == [1, "x"]


@pytest.mark.parametrize(
    ("scores", "message"),
    [
        ([], "column 'verdict'.scores: must be a non-empty list"),
        ("rubric", "column 'verdict'.scores: must be a non-empty list"),
        ([{"name": "a", "description": "", "options": {}}],
         r"column 'verdict'.scores\[0\].options: must map each score to what it means"),
        ([{"name": "", "description": "", "options": {1: "x"}}],
         r"column 'verdict'.scores\[0\].name: must be a non-empty string"),
        ([{"name": "a", "description": "", "options": {1: "x"}}] * 2,
         r"column 'verdict'.scores\[1\].name: repeats score 'a'"),
        ([{"name": "a", "description": "", "options": {1: "x"}, "weight": 2}],
         r"column 'verdict'.scores\[0\]: unknown fields \['weight'\]"),
        ([{"name": "a", "description": 3, "options": {1: "x"}}],
         r"column 'verdict'.scores\[0\].description: must be a string"),
        ([{"name": "a", "description": "", "options": {True: "x"}}],
         r"column 'verdict'.scores\[0\].options: scores must be strings or integers"),
        ([{"name": "a", "description": "", "options": {1: 2}}],
         r"column 'verdict'.scores\[0\].options\[1\]: must be a string"),
    ],
)
def test_bad_scores_name_the_field(scores: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        judge(scores=scores)
