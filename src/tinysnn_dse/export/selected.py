"""``select --export``: the selected design point's checkpoint and record, and for a
fixed-point design its NIR graph and integer C as ``tinysnn export`` writes them.
Everything is checked before anything is written, and written all together or not at
all."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tinysnn_dse.core.params import quant_from_dict
from tinysnn_dse.errors import ConfigError
from tinysnn_dse.export.design import (
    ExportError,
    ExportResult,
    check_expressible,
    check_family,
    export_design,
)
from tinysnn_dse.files import check_clobber, write_files
from tinysnn_dse.records import Record
from tinysnn_dse.runner import Progress, load_checkpoint, no_progress


@dataclass(frozen=True)
class SelectedExport:
    """What ``select --export`` wrote: the export (a fixed-point design), or a note on why
    only the checkpoint and record were written and how to export the design."""

    result: ExportResult | None
    note: str | None = None


def export_selected(
    rec: Record,
    checkpoint: Path,
    dest: Path,
    test_samples: int,
    progress: Progress = no_progress,
    force: bool = False,
) -> SelectedExport:
    """``rec``'s checkpoint (the file ``checkpoint``, from the study's artifact store) and
    record into ``dest``; for a fixed-point design also its NIR graph and integer C, for
    one with FP32 parts a note instead."""
    if test_samples < 1:
        raise ConfigError(f"--export-test-samples must be at least 1, got {test_samples}")
    if not checkpoint.is_file():
        trial = rec.study.get("trial_number")
        raise ConfigError(f"checkpoint of trial {trial} not found at {checkpoint} (--artifacts?)")
    trained = load_checkpoint(checkpoint, "cpu")  # a bad checkpoint fails before any write
    try:
        files: dict[str, bytes | str] = {"model.pt": checkpoint.read_bytes()}
    except OSError as e:
        raise ConfigError(f"cannot read the checkpoint {checkpoint}: {e.strerror or e}") from None
    files["record.json"] = json.dumps(rec.to_dict(), indent=2, sort_keys=True) + "\n"
    quant = quant_from_dict(dict(rec.config["quant"])) if rec.config.get("quant") else None
    try:
        check_family(trained)
    except ExportError as e:
        if dest.exists() and not dest.is_dir():
            raise ConfigError(f"{dest} exists and is not a folder") from None
        check_clobber(dest, files, force, "select --export")
        write_files({dest / name: data for name, data in files.items()})
        return SelectedExport(None, f"note: {rec.key}: {e}")
    try:
        check_expressible(quant or trained.quant)
    except ExportError:
        if dest.exists() and not dest.is_dir():
            raise ConfigError(f"{dest} exists and is not a folder") from None
        check_clobber(dest, files, force, "select --export")
        write_files({dest / name: data for name, data in files.items()})
        return SelectedExport(None, (
            f"note: {rec.key} has FP32 parts, so no NIR graph or integer C was written; "
            f"`tinysnn export {dest / 'model.pt'} --out DIR --scheme ptq --weight-bits B "
            "--vmem-bits B --vth-bits B` exports it fixed point"
        ))  # fmt: skip
    itq = (quant or trained.quant).scheme == "itq"
    res = export_design(trained, None if itq else quant, dest, None, test_samples, progress,
                        title=rec.key, force=force, extra=files,
                        refuse_non_empty=False)  # fmt: skip
    return SelectedExport(res)
