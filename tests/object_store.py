"""An S3 endpoint on loopback for the tests of remote outputs: moto's server in a thread,
started and stopped by the tests (no network beyond 127.0.0.1), with throwaway credentials."""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Iterator

import attrs
import pyarrow.fs as pafs

#: What pyarrow's S3 client reads; nothing real (moto accepts anything).
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_EC2_METADATA_DISABLED": "true",
}
BUCKET = "rowforge-tests"


@attrs.frozen
class LocalS3:
    """moto's S3 at `endpoint` (host:port) with one bucket."""

    endpoint: str

    @property
    def options(self) -> str:
        return f"endpoint_override={self.endpoint}&scheme=http&region=us-east-1"

    def uri(self, prefix: str | None = None) -> str:
        """A fresh output URI in the bucket (a new prefix unless one is given)."""
        return f"s3://{BUCKET}/{prefix or uuid.uuid4().hex[:10]}?{self.options}"

    @property
    def filesystem(self) -> pafs.FileSystem:
        filesystem, _ = pafs.FileSystem.from_uri(self.uri("x"))
        return filesystem

    def keys(self, uri: str) -> list[str]:
        """The objects under an output URI, relative to it (directory markers left out)."""
        filesystem, base = pafs.FileSystem.from_uri(uri)
        selector = pafs.FileSelector(base, recursive=True, allow_not_found=True)
        return sorted(
            info.path[len(base) + 1 :]
            for info in filesystem.get_file_info(selector)
            if info.type == pafs.FileType.File
        )


@contextlib.contextmanager
def local_s3() -> Iterator[LocalS3]:
    """Start moto's S3 server on 127.0.0.1 (a free port), create the bucket, set the
    credentials in the environment (Ray workers started afterwards inherit them); undo all."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    saved = {key: os.environ.get(key) for key in CREDENTIALS}
    os.environ.update(CREDENTIALS)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        store = LocalS3(f"{host}:{port}")
        creator, _ = pafs.FileSystem.from_uri(
            f"s3://{BUCKET}?{store.options}&allow_bucket_creation=true"
        )
        creator.create_dir(BUCKET)
        yield store
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
