"""One schema for every file of a Ray run, as for a local one.

A local run locks the type of a column the config does not type (custom Python, seed data,
processor output) at the first row group written, and converts every later row group to it
(`storage.arrow_types.RunSchema`). On Ray each worker has its own `RunSchema`, so two workers
can each lock a different type (one writes `int64`, the other `double`) and the directory no
longer reads back as one table. The driver therefore keeps the run's lock: the first file it
accepts fixes each column's type, and a later file whose column has another type is converted
to it and written again atomically (a temporary file, fsync, rename), before metadata.json
lists it. A file whose values do not convert fails the run naming the row group and the column,
as a local run fails. The config's declared types are the same in every worker and never
differ; a column that is all null so far is not locked yet, as locally.
"""

from __future__ import annotations

import pyarrow as pa

from rowforge.errors import DatasetGenerationError
from rowforge.storage.arrow_types import fits
from rowforge.storage.location import OutputFiles, relative_path


class FileTypes:
    """The driver's lock on the column types of a Ray run's files."""

    def __init__(self, existing: pa.Schema | None = None) -> None:
        self._locked: dict[str, pa.DataType] = {}
        if existing is not None:  # a resume: the files already written decide
            self._lock(existing)

    def conform(self, row_group: int, files: OutputFiles) -> None:
        """Make row group `row_group`'s file among `files` hold the run's types, or raise
        `DatasetGenerationError` naming the column that does not convert."""
        schema = files.read_schema(relative_path(row_group))
        target = pa.schema(
            [
                field.with_type(self._locked[field.name])
                if field.name in self._locked and not pa.types.is_null(field.type)
                else field
                for field in schema
            ],
            metadata=schema.metadata,
        )
        if not target.equals(schema):
            _rewrite(row_group, files, target)
        self._lock(target)

    def _lock(self, schema: pa.Schema) -> None:
        for field in schema:
            if not pa.types.is_null(field.type):
                self._locked.setdefault(field.name, field.type)


def _rewrite(row_group: int, files: OutputFiles, target: pa.Schema) -> None:
    """Convert the file's rows to `target` the way a local run converts a row group to its
    run's types (`pa.Table.from_pandas` with the schema): the same values pass and fail."""
    relative = relative_path(row_group)
    frame = files.read_table(relative).to_pandas()
    fields = [target.field(str(name)) for name in frame.columns]
    indexed = frame.index.name is not None  # a run's files keep the record index
    if indexed:
        fields.append(target.field(str(frame.index.name)))
    try:
        table = pa.Table.from_pandas(frame, schema=pa.schema(fields), preserve_index=indexed)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        column = next(
            (f.name for f in fields if f.name in frame and not fits(frame[f.name], f.type)), "?"
        )
        kind = target.field(column).type if column in target.names else "?"
        raise DatasetGenerationError(
            f"row group {row_group}: column {column!r} does not fit the run's type {kind} "
            f"(another worker's first file fixed it): {error}"
        ) from error
    files.write_parquet(table, relative)

