"""A Ray build into an `s3://` output (moto's S3 on loopback): every worker writes its row
groups' files to the store itself, the driver publishes metadata.json and the event log, and
the output equals a local build's; resume on Ray finishes a remote output."""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import rowforge
from rowforge.api import load_config
from rowforge.scheduler import RunConfig
from rowforge.storage.check import first_violation
from rowforge.storage.location import OutputFiles
from tests.object_store import LocalS3, local_s3

DEMO = Path(str(files("rowforge") / "demo_data" / "support_dialogues.yaml"))
VARYING = {"engine", "started_at", "finished_at", "models"}


@pytest.fixture(scope="module")
def s3() -> Iterator[LocalS3]:
    with local_s3() as store:
        yield store


@pytest.fixture(scope="module")
def ray_with_credentials(s3: LocalS3, ray_instance: Any) -> Any:
    """Ray started after the store's credentials are in the environment: the workers, which
    open the store themselves, inherit them as a cluster's workers would have their own."""
    return ray_instance


def _metadata(uri: str) -> dict[str, Any]:
    document = json.loads(OutputFiles.at(uri).read_bytes("metadata.json"))
    return {key: value for key, value in document.items() if key not in VARYING}


def test_a_ray_build_at_an_s3_uri_equals_a_local_build_and_resumes_on_ray(
    s3: LocalS3, ray_with_credentials: Any, tmp_path: Path
) -> None:
    config = load_config(DEMO)
    uri = s3.uri()
    local = rowforge.build(config, 40, tmp_path / "local", RunConfig(buffer_size=10))
    on_ray = RunConfig(buffer_size=10, executor="ray", workers=2)
    remote = rowforge.build(config, 40, uri, on_ray)

    assert remote.metadata["engine"] == "ray"
    pd.testing.assert_frame_equal(remote.load_dataset(), local.load_dataset())
    local_metadata = {k: v for k, v in local.metadata.items() if k not in VARYING}
    assert _metadata(uri) == local_metadata
    assert first_violation(uri) is None

    OutputFiles.at(uri).delete("parquet-files/batch_00001.parquet")
    resumed = rowforge.resume(uri, run_config=on_ray)
    assert resumed.outcome == "completed"
    pd.testing.assert_frame_equal(resumed.load_dataset(), local.load_dataset())
    assert first_violation(uri) is None
