"""Reward, ranking, Pareto front, tables and figures over plain trial records.

No Optuna and no torch: the CLI reads the records (:class:`records.Record`) from the study
and hands them here. A report is written into a temporary folder and moved in when it is
complete; it replaces the files of an earlier report only with ``force``.

The package's face; its modules: ``select`` (reward, constraints, ranking, Pareto sets),
``tables`` (table cells and ``trials.csv``), ``pages`` (what the report says, as
Markdown and HTML), ``figures`` (the plots), ``writer`` (the report folder).
"""

from __future__ import annotations

from tinysnn_dse.report.pages import PAPER_MUS
from tinysnn_dse.report.tables import CSV_FIELDS, HEADERS, table_rows, write_csv
from tinysnn_dse.report.writer import FIXED_FILES, Report, build

__all__ = [
    "CSV_FIELDS",
    "FIXED_FILES",
    "HEADERS",
    "PAPER_MUS",
    "Report",
    "build",
    "table_rows",
    "write_csv",
]
