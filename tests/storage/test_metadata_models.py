"""metadata.json's "models" section: what each model's requests did, supplied by the run.

The recorder asks its `models_source` at every write, so the section is as current as the row
group counts beside it, including in the write that records a failed run. Without a source the
document is what it always was: no "models" key, every other key unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rowforge.models import UsageMeter, models_metadata
from rowforge.storage.arrow_types import RunSchema
from rowforge.storage.metadata import RowGroupRecord, RunIdentity, read_metadata, render_metadata
from rowforge.storage.recorder import MetadataRecorder

IDENTITY = RunIdentity("d", "hash", 20, 10, 2, ("a",), "2026-01-01T00:00:00Z")


def _meter(alias: str, answers: int) -> UsageMeter:
    meter = UsageMeter(alias)
    for index in range(answers):
        meter.started()
        meter.answered(0.1 * (index + 1), 30, 10)
    meter.started()
    meter.failed(0.5, "429")
    return meter


def test_every_write_carries_the_models_section_as_supplied(tmp_path: Path) -> None:
    writer = _meter("writer", 2)
    retries = {"writer": {"rate_limit": 1}}
    calls: list[int] = []

    def source() -> Mapping[str, Mapping[str, Any]]:
        calls.append(1)
        return models_metadata({"writer": writer}, retries)

    recorder = MetadataRecorder(tmp_path, IDENTITY, "async", (), RunSchema(), models_source=source)
    recorder.write("running")
    first = read_metadata(tmp_path)["models"]
    assert first == {"writer": {**writer.as_metadata(), "retries": {"rate_limit": 1}}}
    assert first["writer"]["requests"] == 3 and first["writer"]["errors"] == {"429": 1}

    writer.started()
    writer.answered(0.2, 50, 5)
    retries["writer"]["transient"] = 2
    recorder.add(RowGroupRecord(0, "checkpointed", 10, 0, file="batch_00000.parquet"))
    recorder.write("failed", first_error="boom", finished=True)
    last = read_metadata(tmp_path)
    assert len(calls) == 2, "asked at every write"
    assert last["models"]["writer"]["prompt_tokens"] == 30 * 2 + 50
    assert last["models"]["writer"]["retries"] == {"rate_limit": 1, "transient": 2}
    assert last["outcome"] == "failed" and last["actual_num_records"] == 10


def test_the_source_can_be_set_after_construction(tmp_path: Path) -> None:
    """The run creates the recorder before its model registry exists."""
    recorder = MetadataRecorder(tmp_path, IDENTITY, "async", (), RunSchema())
    recorder.write("running")
    assert "models" not in read_metadata(tmp_path)
    recorder.models_source = lambda: {}
    recorder.write("running")
    assert read_metadata(tmp_path)["models"] == {}


def test_without_models_the_document_is_unchanged(tmp_path: Path) -> None:
    """The section is an addition: every other key keeps its value and its place."""
    section = models_metadata({"judge": _meter("judge", 1), "writer": _meter("writer", 3)})
    plain_dir, with_dir = tmp_path / "plain", tmp_path / "with"
    for directory, source in ((plain_dir, None), (with_dir, lambda: section)):
        directory.mkdir()
        recorder = MetadataRecorder(directory, IDENTITY, "sync", (), RunSchema())
        recorder.models_source = source
        recorder.add(RowGroupRecord(1, "checkpointed", 10, 0, file="batch_00001.parquet"))
        recorder.write("completed", finished=True)
    plain = read_metadata(plain_dir)
    with_models = read_metadata(with_dir)
    assert with_models.pop("models") == section
    plain.pop("finished_at"), with_models.pop("finished_at")
    assert list(with_models) == list(plain) and with_models == plain
    keys = list(json.loads((with_dir / "metadata.json").read_text()))
    assert keys.index("models") == keys.index("skipped_cells") + 1, "before the long lists"


def test_one_line_per_model(tmp_path: Path) -> None:
    """A model's latency histogram is hundreds of numbers: indented, one per line, it would
    bury the document; each model is one line instead."""
    meters = {alias: _meter(alias, 50) for alias in ("judge", "writer")}
    recorder = MetadataRecorder(tmp_path, IDENTITY, "async", (), RunSchema())
    recorder.models_source = lambda: models_metadata(meters)
    recorder.write("running")
    text = (tmp_path / "metadata.json").read_text()
    lines = text.splitlines()
    start = lines.index('  "models": {')
    assert lines[start + 1].startswith('    "judge": {"requests": 51,')
    assert lines[start + 2].startswith('    "writer": {"requests": 51,')
    assert lines[start + 3] == "  },"
    assert len(meters["writer"].as_metadata()["latency_histogram_ms"]) > 10


def test_a_preview_renders_the_same_section() -> None:
    section = models_metadata({"writer": _meter("writer", 2)}, {"writer": {"transient": 1}})
    common: dict[str, Any] = {
        "engine": "async",
        "outcome": "completed",
        "row_groups": [],
        "schema": {"a": "int64"},
        "early_shutdown": False,
        "first_error": None,
        "finished_at": None,
    }
    assert render_metadata(IDENTITY, models=section, **common)["models"] == section
    assert "models" not in render_metadata(IDENTITY, **common)
