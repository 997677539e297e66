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
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from types import ModuleType

from rowforge.errors import ConfigError

log = logging.getLogger("rowforge")

INSTALL_HINT = "pip install 'rowforge[ray]'"


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
    if address is None:
        os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # read when the instance starts
        # Ray 2.60 protects a new local instance with a token (good) and warns that it did so
        # on the terminal (noise in every run): the notice alone is dropped
        logging.getLogger(_TOKEN_NOTICE_LOGGER).addFilter(_drop_token_notice)
        ray.init(
            num_cpus=num_cpus,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.WARNING,
        )
        log.info("started a local Ray instance for this run")
    else:
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
        log.info("joined the Ray cluster at %s", address)
    try:
        yield ray
    finally:
        ray.shutdown()
