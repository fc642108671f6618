"""``tinysnn export``: a selected design as files that leave the tool (method.md section
9; docs/model.md, "Integer inference" and "Export").

``export_design`` re-tests a checkpoint under the design's quantization exactly as
``tinysnn evaluate`` does and writes into one folder:

- ``model.nir``: the inference network as a NIR graph (:mod:`nir_graph`);
- ``c/``: integer-only C99 (:mod:`c`), ``test_spikes.bin`` (:mod:`spikes`) and
  ``expected.txt`` (``predicted_label true_label`` per image, from the simulator);
- ``evaluation.json`` (the evaluation's record) and ``README.md`` (:mod:`readme`: what
  each file is, the formats, how to build and run, the memory map against Eq. 4).

The package's face; its modules: ``design`` (one design into a folder, written whole or
not at all), ``selected`` (``select --export``), ``readme`` (the README from its
template), ``c``, ``nir_graph``, ``spikes`` (the files), ``nir_check`` (the optional
consumer's check).
"""

from __future__ import annotations

from tinysnn_dse.export.design import (
    EXPORT_NAMES,
    ExportError,
    ExportResult,
    check_expressible,
    export_design,
)
from tinysnn_dse.export.selected import SelectedExport, export_selected

__all__ = [
    "EXPORT_NAMES",
    "ExportError",
    "ExportResult",
    "SelectedExport",
    "check_expressible",
    "export_design",
    "export_selected",
]
