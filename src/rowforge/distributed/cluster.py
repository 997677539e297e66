"""Starting, joining and leaving Ray for one run.

Ray is an optional dependency (`pip install 'rowforge[ray]'`): it is imported here, lazily, and
only when a run asks for `executor="ray"`, so `import rowforge` never needs it.

With no address, the run starts a private local Ray instance and stops it when the run ends.
That instance must send nothing anywhere and keep quiet: usage statistics are switched off in
the environment before Ray is imported (Ray reads `RAY_USAGE_STATS_ENABLED` at start-up), no
dashboard is started, and Ray's own log lines and the workers' output stay out of the user's
terminal (`log_to_driver=False`, the "ray" logger at WARNING); what a worker wants the user to
know comes back to the driver as data and is reported there. With an address, the run joins
that cluster as a driver and only disconnects at the end: the cluster is not the run's to stop.
A process already connected to Ray (a Ray Job's entrypoint, a notebook) is used as it is and
left connected.

Joining fails with a `ConfigError` naming the address, not Ray's traceback, and quickly where
Ray would wait: Ray 2.60 retries an address where nothing listens 20 times, each attempt
waiting about 30 s (a measured join was still waiting after 5 minutes), so the address is first
tried with a plain TCP connection, bounded by `REACH_TIMEOUT_S`. Something listening there that
is not Ray still meets Ray's wait.

A cluster started by `ray start --head` (Ray 2.60) asks for a token; Ray sends its token
(`~/.ray/auth_token`, `RAY_AUTH_TOKEN_PATH` or `RAY_AUTH_TOKEN`) to an address it is given only
when `RAY_AUTH_MODE=token` is set, and finds both the cluster and the token itself with
`"auto"`: the error for a refused token says so. rowforge leaves that choice to Ray and the
user rather than sending a token to an address on its own. (Ray turns a loopback address such
as 127.0.0.1:6379 into this machine's own address before connecting; that is no reason for
joining to fail, as Ray's servers listen on every interface.)
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Iterator
from types import ModuleType

from rowforge.errors import ConfigError, describe_error

log = logging.getLogger("rowforge")

INSTALL_HINT = "pip install 'rowforge[ray]'"

#: How long a cluster's address may take to accept a TCP connection before joining gives up.
REACH_TIMEOUT_S = 5.0


def require_ray() -> ModuleType:
    """The `ray` module, or `ConfigError` saying how to install it."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError as error:
        raise ConfigError(
            f"RunConfig.executor is 'ray' but Ray is not installed: {INSTALL_HINT}"
        ) from error
    return ray


#: Where Ray logs that a new local instance has token authentication on.
_TOKEN_NOTICE_LOGGER = "ray._private.authentication.authentication_token_setup"


def _drop_token_notice(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("Token authentication is enabled")


@contextlib.contextmanager
def ray_session(address: str | None, *, num_cpus: int | None = None) -> Iterator[ModuleType]:
    """Ray, connected for the block: a new local instance (`address` None) or the cluster at
    `address`. Whatever this block connected, it disconnects (and a local instance it started
    is stopped) however the block ends."""
    ray = require_ray()
    if ray.is_initialized():  # the caller owns this connection (a Ray Job, a notebook)
        yield ray
        return
    # Ray 2.60 protects a new local instance with a token (good) and warns that it did so on the
    # terminal (noise in every run; joining with "auto" warns the same): the notice alone is
    # dropped
    logging.getLogger(_TOKEN_NOTICE_LOGGER).addFilter(_drop_token_notice)
    if address is None:
        os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # read when the instance starts
        ray.init(
            num_cpus=num_cpus,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.WARNING,
        )
        log.info("started a local Ray instance for this run")
    else:
        _join(ray, address)
        log.info("joined the Ray cluster at %s", address)
    try:
        yield ray
    finally:
        ray.shutdown()


def _join(ray: ModuleType, address: str) -> None:
    """Connect to the cluster at `address` as a driver, or raise `ConfigError` naming it."""
    check_reachable(address)
    try:
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError, ray.exceptions.RayError) as error:
        raise ConfigError(_join_failure(address, error)) from error


def _host_port(address: str) -> tuple[str, int] | None:
    """`host:port` or `ray://host:port` split (IPv6 hosts in brackets); None for "auto" or an
    address Ray itself should judge."""
    host, colon, port = address.strip().removeprefix("ray://").rpartition(":")
    if not colon or not host or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def check_reachable(address: str) -> None:
    """Raise `ConfigError` unless something accepts a TCP connection at `address` within
    `REACH_TIMEOUT_S`: where nothing listens, Ray's own connection retries take minutes. A
    build calls it before it claims its output too, so a wrong address writes nothing."""
    parsed = _host_port(address)
    if parsed is None:
        return
    try:
        with socket.create_connection(parsed, timeout=REACH_TIMEOUT_S):
            pass
    except OSError as error:
        reason = "no answer" if isinstance(error, TimeoutError) else describe_error(error)
        raise ConfigError(
            f"cannot join the Ray cluster at {address!r}: nothing accepted a connection there "
            f"within {REACH_TIMEOUT_S:g} s ({reason}). Is the cluster running (`ray status`), "
            "and is this its head's address (`ray start --head --port` sets the port)?"
        ) from None


def _join_failure(address: str, error: BaseException) -> str:
    """What `ConfigError` says when Ray could not join `address`: a refused or missing token
    is named with the remedy; anything else with Ray's own (last) message."""
    chain: list[str] = []
    cause: BaseException | None = error
    while cause is not None and len(chain) < 10:
        chain.append(str(cause))
        cause = cause.__cause__ or cause.__context__
    text = " ".join(chain)
    if "InvalidAuthToken" in text or "authentication token" in text.lower():
        return (
            f"cannot join the Ray cluster at {address!r}: the cluster asks for a token and "
            "this process sent none or the wrong one. Ray sends the token to an address it is "
            "given only with RAY_AUTH_MODE=token set, reading it from ~/.ray/auth_token, the "
            "file RAY_AUTH_TOKEN_PATH names, or RAY_AUTH_TOKEN; on a machine of the cluster, "
            "--ray-address auto finds the cluster and its token itself"
        )
    return f"cannot join the Ray cluster at {address!r}: {describe_error(error)}"
