"""Survivors of `make mutants` in rowforge.storage.metadata, killed: a row group's record reads
back from metadata.json exactly as it was written, and an older record lacking the later keys
reads with their defaults."""

from __future__ import annotations

import json

from rowforge.storage.metadata import RowGroupRecord


def test_a_row_group_record_reads_back_exactly_as_metadata_json_holds_it() -> None:
    record = RowGroupRecord(
        index=4,
        state="drained",
        records_written=7,
        records_dropped=2,
        drop_reasons={"processor": 2},
        skipped_cells={"answer": 3},
        file="parquet-files/batch_00004.parquet",
        first_record=40,
        records_resized=1,
    )
    assert RowGroupRecord.from_json(json.loads(json.dumps(record.as_json()))) == record


def test_a_record_without_the_optional_keys_reads_with_their_defaults() -> None:
    raw = {"index": 0, "state": "dropped", "records_written": 0, "records_dropped": 5}
    assert RowGroupRecord.from_json(raw) == RowGroupRecord(
        index=0, state="dropped", records_written=0, records_dropped=5
    )
    record = RowGroupRecord.from_json({**raw, "drop_reasons": None, "skipped_cells": None})
    assert (record.drop_reasons, record.skipped_cells, record.file) == ({}, {}, None)
    assert (record.first_record, record.records_resized) == (0, 0)
