"""rowforge.statemachine: specs as data, reference and compiled machines, the event log.

Import order matters only in one way: `catalog` loads and validates every spec at import, so a
broken spec stops `import rowforge.statemachine` with a `SpecError` naming file and entry.
"""

from rowforge.errors import GuardRejected, IllegalTransition, ReplayError, SpecError
from rowforge.statemachine.catalog import MACHINE_NAMES, SPECS, SPECS_DIR, TABLES, load_specs
from rowforge.statemachine.compiled import CompiledMachine, TransitionTable, compile_table
from rowforge.statemachine.events import (
    Event,
    EventFile,
    EventLog,
    iter_jsonl,
    read_jsonl,
    replay,
    write_jsonl,
)
from rowforge.statemachine.guards import Guard, Guards, Subject
from rowforge.statemachine.reference import ReferenceMachine, build_reference_machine
from rowforge.statemachine.spec import MachineSpec, load_spec, parse_spec

__all__ = [
    "MACHINE_NAMES",
    "SPECS",
    "SPECS_DIR",
    "TABLES",
    "CompiledMachine",
    "Event",
    "EventFile",
    "EventLog",
    "Guard",
    "GuardRejected",
    "Guards",
    "IllegalTransition",
    "MachineSpec",
    "ReferenceMachine",
    "ReplayError",
    "SpecError",
    "Subject",
    "TransitionTable",
    "build_reference_machine",
    "compile_table",
    "iter_jsonl",
    "load_spec",
    "load_specs",
    "parse_spec",
    "read_jsonl",
    "replay",
    "write_jsonl",
]
