"""The machines of rowforge, loaded and validated once, at import time.

`SPECS` maps machine name (`run`, `row_group`, `worker`, `cell`) to its validated `MachineSpec`
and `TABLES` to its compiled `TransitionTable`. Importing `rowforge.statemachine` therefore fails
loudly (with a `SpecError` naming file and entry) when a spec is broken, before any run starts.

Where the specs live: a built wheel carries them as `rowforge/specs/` (hatch force-include); a
source checkout (the editable install used in development and CI) reads the repository's
`specs/` directly, so editing a spec takes effect without reinstalling.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from rowforge.errors import SpecError
from rowforge.statemachine.compiled import TransitionTable, compile_spec
from rowforge.statemachine.spec import MachineSpec, load_spec

MACHINE_NAMES = ("run", "row_group", "worker", "cell")


def find_specs_dir() -> Path:
    """The directory holding the spec files: packaged copy first, then the source checkout."""
    package_dir = Path(__file__).resolve().parent.parent
    for candidate in (package_dir / "specs", package_dir.parent.parent / "specs"):
        if (candidate / "run.yaml").is_file():
            return candidate
    raise SpecError(f"cannot find the specs directory near {package_dir}")


def load_specs(directory: Path) -> dict[str, MachineSpec]:
    """Load every machine of `MACHINE_NAMES` from `directory` and check each file's `name`."""
    specs: dict[str, MachineSpec] = {}
    for name in MACHINE_NAMES:
        spec = load_spec(directory / f"{name}.yaml")
        if spec.name != name:
            raise SpecError(f"{spec.path}: 'name' is {spec.name!r}, expected {name!r}")
        specs[name] = spec
    return specs


SPECS_DIR = find_specs_dir()
SPECS: Mapping[str, MachineSpec] = MappingProxyType(load_specs(SPECS_DIR))
TABLES: Mapping[str, TransitionTable] = MappingProxyType(
    {name: compile_spec(spec) for name, spec in SPECS.items()}
)
