"""Where finished row groups go: sinks (memory for preview, Parquet for build)."""

from rowforge.storage.location import OutputFiles
from rowforge.storage.sinks import MemorySink, ParquetSink, Sink

__all__ = ["MemorySink", "OutputFiles", "ParquetSink", "Sink"]
