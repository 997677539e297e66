"""Checking what a function or remote validator returned for one batch.

Both hand back one output per record they were given; each output is a mapping with a boolean
(or null) `is_valid` and any other details, as data-designer's `ValidationOutput` is. Anything
else is a broken batch, and `checked_outputs` says why (a `ValueError`), so the step can fail
the batch's rows with that reason instead of storing what cannot be trusted.

With an `output_schema`, each output must also be valid for it and is conformed to the Arrow
type the schema gives (`rowforge.storage.arrow_types`), so every row group of the run writes
the same schema; properties the schema does not declare are not stored, as for a structured
LLM column.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from rowforge.models.config import describe
from rowforge.storage.arrow_types import conform


def checked_outputs(
    outputs: Any, count: int, schema: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    """`outputs` as `count` plain dicts (conformed to `schema` when one is given); a
    `ValueError` naming the first problem otherwise."""
    if not isinstance(outputs, list):
        raise ValueError(f"returned {describe(outputs)}, not a list of outputs")
    if len(outputs) != count:
        raise ValueError(f"returned {len(outputs)} outputs for {count} records")
    validator = None
    if schema is not None:
        import jsonschema

        validator = jsonschema.Draft202012Validator(dict(schema))
    checked = []
    for index, output in enumerate(outputs):
        row = _verdict(index, output)
        if validator is not None and schema is not None:
            mismatch = _best_match(validator, row)
            if mismatch is not None:
                raise ValueError(f"output {index} does not match output_schema: {mismatch}")
            try:
                row = conform(row, schema)
            except ValueError as misfit:
                raise ValueError(f"output {index} cannot be stored: {misfit}") from None
        checked.append(row)
    return checked


def _verdict(index: int, output: Any) -> dict[str, Any]:
    """One output as a dict whose `is_valid` is a bool or None (pandas' NaN for a missing
    value counts as None)."""
    if not isinstance(output, Mapping):
        raise ValueError(f"output {index} is {describe(output)}, not a mapping")
    if "is_valid" not in output:
        raise ValueError(f"output {index} has no 'is_valid' (it has {sorted(map(str, output))})")
    row = dict(output)
    verdict = row["is_valid"]
    if isinstance(verdict, float) and math.isnan(verdict):
        row["is_valid"] = verdict = None
    if verdict is not None and not isinstance(verdict, bool):
        raise ValueError(
            f"output {index}'s is_valid is {describe(verdict)}, not a boolean or null"
        )
    return row


def _best_match(validator: Any, row: dict[str, Any]) -> str | None:
    import jsonschema

    error = jsonschema.exceptions.best_match(validator.iter_errors(row))
    return None if error is None else str(error.message)
