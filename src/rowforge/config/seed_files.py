"""Where a seed dataset's rows are: a local file, or files of a Hugging Face Hub dataset.

A seed dataset's `path` is a local `.parquet` or `.csv` file, or `hf://datasets/<owner>/<name>/
<pattern>`, where `<pattern>` is a path or glob of `.parquet` / `.csv` files inside that dataset
repository (data-designer's Hub seed paths, `datasets/<owner>/<name>/data/*.parquet`, with the
`hf://` scheme in front). Hub files are fetched once into the Hugging Face cache by
`huggingface_hub` (the optional extra `rowforge[huggingface]`) and read from there, so a second
run, or a run with `HF_HUB_OFFLINE=1`, reads the cache and nothing else. `HF_HUB_CACHE` (where
the cache is) and `HF_TOKEN` (private datasets) are read by rowforge at run time as
`huggingface_hub` reads them; no token ever goes into a config.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from rowforge.errors import ConfigError

HUB_SCHEME = "hf://"
_HUB_PATH = re.compile(r"hf://datasets/(?P<repo>[^/]+/[^/]+)/(?P<pattern>.+)\Z")
_SUFFIXES = (".parquet", ".csv")
_TRUE = ("1", "true", "yes", "on")


def is_hub_path(path: str) -> bool:
    return path.startswith(HUB_SCHEME)


def hub_path_problem(path: str) -> str | None:
    """Why `path` is not a Hub seed path rowforge reads, or None."""
    match = _HUB_PATH.match(path)
    if match is None:
        return f"must be hf://datasets/<owner>/<name>/<files>, got {path!r}"
    if not match.group("pattern").lower().endswith(_SUFFIXES):
        return f"must name .parquet or .csv files, got {match.group('pattern')!r}"
    return None


def seed_files(path: str, where: str) -> list[Path]:
    """The local files holding the rows of seed path `path`, in a stable order; a `ConfigError`
    naming `where` (the field path) when there are none."""
    if not is_hub_path(path):
        local = Path(path)
        if not local.is_file():
            raise ConfigError(f"{where}: no such file {path!r}")
        return [local]
    problem = hub_path_problem(path)
    if problem is not None:
        raise ConfigError(f"{where}: {problem}")
    match = _HUB_PATH.match(path)
    assert match is not None
    snapshot = _hub_snapshot(match.group("repo"), match.group("pattern"), where)
    files = sorted(p for p in snapshot.glob(match.group("pattern")) if p.is_file())
    if not files:
        raise ConfigError(f"{where}: no files match {match.group('pattern')!r} in {path!r}")
    return files


def _hub_snapshot(repo: str, pattern: str, where: str) -> Path:
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
    except ImportError:
        raise ConfigError(
            f"{where}: Hugging Face Hub datasets need huggingface_hub: "
            "pip install 'rowforge[huggingface]'"
        ) from None
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE
    try:
        folder = snapshot_download(
            repo_id=repo,
            repo_type="dataset",
            allow_patterns=[pattern],
            cache_dir=os.environ.get("HF_HUB_CACHE") or None,
            local_files_only=offline,
        )
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError, ValueError) as error:
        mode = " (offline: HF_HUB_OFFLINE is set, and the cache has no copy)" if offline else ""
        raise ConfigError(
            f"{where}: cannot get {repo!r} from the Hugging Face Hub{mode}: {error}"
        ) from None
    return Path(folder)
