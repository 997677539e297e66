"""Shared test configuration: hypothesis profiles (`ci` is loaded when the CI variable is set),
and spec-edge coverage (`ROWFORGE_EDGE_COVERAGE=1`, set by `make test`; see edge_coverage.py)."""

import os

import pytest
from hypothesis import HealthCheck, settings

from tests import edge_coverage

EDGE_COVERAGE = os.environ.get("ROWFORGE_EDGE_COVERAGE", "") not in ("", "0")

settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


def pytest_configure(config: pytest.Config) -> None:
    if EDGE_COVERAGE:
        edge_coverage.install()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail a green full run that left a spec edge untaken."""
    if not EDGE_COVERAGE or exitstatus != 0:
        return
    missing = edge_coverage.untaken(edge_coverage.TAKEN)
    if missing:
        lines = "\n".join(f"  {m}: {trigger} from {source}" for m, source, trigger in missing)
        print(f"\nspec edges no test took ({len(missing)}):\n{lines}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
