"""The run report: one self-contained HTML page of charts and tables from an output directory.

`write_report(output_dir)` reads metadata.json, events.jsonl and (for traced runs) traces.jsonl
and writes `<output_dir>/report.html`, with plotly.js embedded so the page opens offline. It
needs plotly, the `report` extra (`pip install 'rowforge[report]'`). `rowforge report DIR` and
`rowforge run --report` call it.
"""

from rowforge.report.page import HISTOGRAM_KEY, REPORT_FILE, write_report

__all__ = ["HISTOGRAM_KEY", "REPORT_FILE", "write_report"]
