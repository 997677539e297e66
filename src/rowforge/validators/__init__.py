"""Running a `validation` column's validator: code (ruff, sqlfluff), a function, an endpoint.

A validation column (`rowforge.config.columns.ValidationColumn`, data-designer's `validation`)
judges other columns in batches and holds, per row, `{"is_valid": bool or None, ...details}`.
One module per job:

- `step`: the column as one batch step (chunks of `batch_size`, validated concurrently; a
  failed chunk fails its rows with the reason) and the Arrow type of its values;
- `python`: Python linted by one ruff process per batch, scored as data-designer scores it;
- `sql`: SQL parsed by sqlfluff in a dialect, in a worker thread;
- `function`: a Python function `fn(frame) -> frame`;
- `remote`: an HTTP endpoint, with retries, a timeout and a cap on batches in flight;
- `outputs`: the checks a function's or an endpoint's outputs pass (count, `is_valid`,
  `output_schema`).

ruff, sqlfluff and httpx are the `validation` extra, imported only when a column needs them.
"""

from rowforge.validators.step import ValidatorError, validation_steps, validation_type

__all__ = ["ValidatorError", "validation_steps", "validation_type"]
