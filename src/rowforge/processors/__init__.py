"""rowforge.processors: row-group transforms with a row-count contract (INV-5, INV-6)."""

from rowforge.processors.base import (
    STAGES,
    FunctionProcessor,
    Processor,
    Stage,
    function_processor,
)
from rowforge.processors.builtins import DropColumns, RenameColumns, SchemaTransform
from rowforge.processors.runner import StageResult, run_stage

__all__ = [
    "STAGES",
    "DropColumns",
    "FunctionProcessor",
    "Processor",
    "RenameColumns",
    "SchemaTransform",
    "Stage",
    "StageResult",
    "function_processor",
    "run_stage",
]
