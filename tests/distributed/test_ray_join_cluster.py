"""`rowforge run --executor ray --ray-address ADDR` joining a Ray cluster that `ray start --head`
started on this machine, as a user does: the build equals a local build, and the cluster is
still up afterwards with no rowforge actor left on it. Joining an address where nothing listens,
or a cluster without its token, fails with a rowforge error naming the address.

The head is Ray 2.60's default: it asks every client for a token. Ray sends a token to an
address it is given only with `RAY_AUTH_MODE=token`, and reads the mode and the token once per
process, so the joins run in subprocesses with this head's own token (a file in its temporary
directory, never ~/.ray/auth_token) in their environment, as a user's shell would have it.
The head's processes are stopped by their process group (and the workers its raylet started),
not by `ray stop --force`, which stops every Ray process on the machine, another test run's too.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import pandas as pd
import psutil  # type: ignore[import-untyped]  # Ray's dependency
import pytest

import rowforge
from rowforge.api import load_config
from rowforge.distributed.coordinator import ACTOR_PREFIX
from rowforge.errors import ConfigError
from rowforge.scheduler import RunConfig
from rowforge.storage.check import first_violation

ROOT = Path(__file__).resolve().parents[2]
DEMO = Path(str(files("rowforge") / "demo_data" / "support_dialogues.yaml"))
RAY = str(Path(sys.executable).with_name("ray"))
#: Waiting for a subprocess to end; never an assertion on time.
PATIENCE_S = 120

#: Lists the cluster's live nodes and rowforge's named actors on it, as JSON.
PROBE = """
import json, logging, sys
import ray
ray.init(address=sys.argv[1], log_to_driver=False, logging_level=logging.ERROR)
actors = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True)]
print(json.dumps({
    "alive_nodes": sum(1 for node in ray.nodes() if node["Alive"]),
    "gcs_address": ray.get_runtime_context().gcs_address,
    "rowforge_actors": [name for name in actors if name.startswith(sys.argv[2])],
}))
ray.shutdown()
"""


@dataclass(frozen=True)
class Head:
    address: str  # 127.0.0.1:port, as the user types it
    env: dict[str, str]  # a shell with this cluster's token
    group: int  # the process group of `ray start` and the processes it left running


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _stop_group(group: int) -> None:
    """Stop every process in `group` and every process they started (Ray's workers have
    process groups of their own), SIGTERM first, SIGKILL after 3 s."""
    found: dict[int, psutil.Process] = {}
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) == group:
                found[process.pid] = process
                found.update((child.pid, child) for child in process.children(recursive=True))
        except (psutil.Error, ProcessLookupError):
            continue
    for process in found.values():
        with contextlib.suppress(psutil.Error):
            process.send_signal(signal.SIGTERM)
    _, alive = psutil.wait_procs(list(found.values()), timeout=3)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(alive, timeout=5)


@pytest.fixture(scope="module")
def head() -> Iterator[Head]:
    # Ray's socket paths live under --temp-dir and must stay short (AF_UNIX: 107 bytes)
    temp = Path(tempfile.mkdtemp(prefix="rfj-", dir="/tmp"))
    token = temp / "token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    env = {key: value for key, value in os.environ.items() if not key.startswith("RAY_")}
    env |= {
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN_PATH": str(token),
        "PYTHONPATH": str(ROOT),
        "COLUMNS": "200",
    }
    port = _free_port()
    start = subprocess.Popen(
        [
            RAY, "start", "--head", "--port", str(port), "--temp-dir", str(temp),
            "--include-dashboard=false", "--disable-usage-stats", "--num-cpus", "2",
            # ports Ray would otherwise take fixed (8265, 52365), in case another instance has
            # them; no Ray Client server starts (ray[client] is not installed)
            "--dashboard-port", str(_free_port()),
            "--dashboard-agent-listen-port", str(_free_port()),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: the teardown stops exactly that
    )  # fmt: skip
    try:
        output, _ = start.communicate(timeout=PATIENCE_S)
        assert start.returncode == 0, output
        yield Head(f"127.0.0.1:{port}", env, start.pid)
    finally:
        start.kill()  # only if `ray start` itself is still running
        start.wait()
        _stop_group(start.pid)
        shutil.rmtree(temp, ignore_errors=True)


def _run(
    head: Head, output: Path, address: str, *, without: tuple[str, ...] = (), **env: str
) -> subprocess.CompletedProcess[str]:
    """`rowforge run` of the demo config, 40 records, in the head's shell (`env` added,
    `without` taken out)."""
    shell = {key: value for key, value in head.env.items() if key not in without}
    return subprocess.run(
        [
            sys.executable, "-m", "rowforge.cli", "run", str(DEMO), "-n", "40",
            "-o", str(output), "--buffer-size", "10",
            "--executor", "ray", "--ray-address", address, "--workers", "2",
        ],
        cwd=ROOT,
        env=shell | env,
        capture_output=True,
        text=True,
        timeout=PATIENCE_S,
    )  # fmt: skip


def _probe(head: Head) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, head.address, ACTOR_PREFIX],
        env=head.env,
        capture_output=True,
        text=True,
        timeout=PATIENCE_S,
    )
    assert done.returncode == 0, done.stderr
    probed: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return probed


def test_a_run_joins_the_cluster_builds_the_local_dataset_and_leaves_the_cluster_up(
    tmp_path: Path, head: Head
) -> None:
    before = _probe(head)
    local = rowforge.build(load_config(DEMO), 40, tmp_path / "local", RunConfig(buffer_size=10))

    joined = _run(head, tmp_path / "ray", head.address)

    assert joined.returncode == 0, joined.stderr
    assert "rowforge run: completed: 40 of 40 records written" in joined.stderr
    assert "WARNING" not in joined.stderr + joined.stdout  # nothing of Ray's on the terminal
    metadata = json.loads((tmp_path / "ray" / "metadata.json").read_text())
    assert (metadata["engine"], metadata["outcome"]) == ("ray", "completed")
    assert local.outcome == "completed"
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "ray" / "parquet-files").sort_index(),
        pd.read_parquet(tmp_path / "local" / "parquet-files").sort_index(),
    )
    assert first_violation(tmp_path / "ray") is None
    after = _probe(head)  # the cluster the run joined is not the run's to stop
    assert after == before
    assert after["alive_nodes"] == 1 and after["rowforge_actors"] == []


def test_joining_without_the_cluster_s_token_names_the_address_and_the_remedy(
    tmp_path: Path, head: Head
) -> None:
    """The failure a user meets first: the token is there (RAY_AUTH_TOKEN_PATH) but
    RAY_AUTH_MODE is not set, so Ray does not send it to an address it is given. The message is
    the last line, after Ray's own log lines of the refusal; RAY_gcs_server_port_wait_time_s
    shortens Ray's 20 one-second retries."""
    refused = _run(
        head, tmp_path / "out", head.address,
        without=("RAY_AUTH_MODE",), RAY_gcs_server_port_wait_time_s="1",
    )  # fmt: skip
    assert refused.returncode == 2, refused.stderr
    message = refused.stderr.strip().splitlines()[-1]
    assert message.startswith(
        f"rowforge run: invalid input: cannot join the Ray cluster at '{head.address}': the "
        "cluster asks for a token"
    ), message
    assert "RAY_AUTH_MODE=token" in message


def test_an_address_where_nothing_listens_fails_at_once_naming_it(tmp_path: Path) -> None:
    """Ray would retry such an address for minutes; rowforge tries a TCP connection first,
    before it claims the output directory."""
    import ray

    if ray.is_initialized():  # a connected process would run there, whatever the address
        ray.shutdown()
    address = f"127.0.0.1:{_free_port()}"
    config = RunConfig(buffer_size=10, executor="ray", ray_address=address, workers=2)
    with pytest.raises(ConfigError) as caught:
        rowforge.build(load_config(DEMO), 40, tmp_path / "out", config)
    assert str(caught.value).startswith(
        f"cannot join the Ray cluster at '{address}': nothing accepted a connection there"
    )
    assert "Connection refused" in str(caught.value)
    assert not (tmp_path / "out").exists()  # refused before the output is claimed
