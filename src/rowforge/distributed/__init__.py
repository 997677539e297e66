"""Running a build on Ray: the row group is the unit of distribution.

Why the row group: every sampler is keyed by (seed, column, record index), so a row group
generates the same rows wherever it runs, and a row group is already what the engine writes
atomically (one Parquet file) and what metadata.json records. So a Ray run is many local runs
over disjoint row groups of one plan, writing into one output directory:

- `cluster`: starts a private local Ray instance or joins a cluster, for the run only; Ray is
  imported lazily, so `import rowforge` never needs it;
- `caps`: each worker's share of the run's concurrency caps (the shares add up to the caps);
- `worker`: the actor, rowforge's own async engine (`run_plan_async`) over the row groups it
  is given, with a `ParquetSink` on the run's directory and the model registry's lifespan
  entered in the actor's loop;
- `coordinator`: the driver, which the build path (`rowforge.build`) calls where a local build
  calls `run_plan`;
- `progress`: the run's one `ProgressSnapshot`, combined on the driver from the workers'
  snapshots and the row groups it accepted.

How work and results flow: the row groups are dealt out round-robin once, one actor per
worker. Each actor runs its share with `run(row_groups)` and the driver, meanwhile, awaits
`finished(seen)`, which replies when row groups ended or the worker's engine took a progress
snapshot: the row groups the driver has not acknowledged (summary, their row-group
transitions, column types), the engine's latest snapshot and the worker's model figures. The
driver appends the transitions to events.jsonl and the summary to metadata.json, exactly where
a local run's checkpoint hook does, and hands `on_progress` one snapshot of the whole run every
`progress_interval_s` and a final one, whose totals are metadata.json's, however the run ends.
The driver owns events.jsonl, metadata.json, the run machine (one run, however many workers)
and the run's progress; the workers own only their files.

Failures, as the local engine has them: a worker whose process dies has its unreported row
groups run again by a new worker in its place, except those whose file exists (a file is
complete, so the row group is done; it is recovered from the file as `resume` does); a fatal
error in one worker (processor failure, early shutdown) stops the others, and the driver raises
the same error class and message a local run raises; Ctrl-C stops every worker (each engine
awaits its tasks, and a worker's reply the cancelled driver never read is handed over again)
before the driver raises, leaving an output that `resume` finishes with either executor. See
docs/scaling.md.
"""
