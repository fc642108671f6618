"""Exporting one design into a folder: re-test its checkpoint under the design's
quantization exactly as ``tinysnn evaluate`` does (same generator, same spikes, same
formats), capturing the input of every presentation of its first ``test_samples`` test
images, and write every file of the export (the package's docstring lists them).

Everything is written into a temporary folder beside ``out_dir`` and moved in at the end
(:func:`files.staging`), so a failure (a full disk included: one line) leaves nothing
half-written. A folder that is not empty is refused unless ``force`` (then files of the
same name are replaced).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinysnn_dse import __version__
from tinysnn_dse.core import integer, readout
from tinysnn_dse.core.modes import Topology
from tinysnn_dse.core.params import QuantSpec
from tinysnn_dse.errors import ConfigError
from tinysnn_dse.export import c as c_mod
from tinysnn_dse.export import nir_graph, spikes
from tinysnn_dse.export import ram as ram_mod
from tinysnn_dse.export.readme import Ram, readme
from tinysnn_dse.files import check_clobber, move_in, stage_parent, staging
from tinysnn_dse.runner import (
    Evaluation,
    Progress,
    Trained,
    evaluate_checkpoint,
    family_of,
    no_progress,
)

#: what an export writes at the top of its folder
EXPORT_NAMES = ("model.nir", "model.norse.nir", "c", "evaluation.json", "README.md")


class ExportError(ConfigError):
    """A design the export cannot write (a format the C cannot express, a bad folder)."""


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote: the folder, the files, the accuracy of ``expected.txt`` and
    the record's, and the parameter bytes against Eq. 4's."""

    out_dir: Path
    files: list[str]
    test_samples: int
    accuracy: float
    parameter_bytes: int
    eq4_bytes: float
    evaluation: Evaluation | None = None
    design: integer.IntDesign | None = None


def check_expressible(quant: QuantSpec) -> None:
    """Refuse, before any work, a quantization the integer C cannot express."""
    fp32 = [n for n, b in (("--weight-bits", quant.weight_bits), ("--vmem-bits", quant.vmem_bits),
                           ("--vth-bits", quant.vth_bits)) if b is None]  # fmt: skip
    if fp32:
        raise ExportError(
            f"the integer C export needs every format fixed point; {', '.join(fp32)} "
            "FP32 (give them a width, e.g. --weight-bits 8 --vmem-bits 16 --vth-bits 16)"
        )


def check_family(trained: Trained) -> None:
    """Refuse, before any work, a model of a family no exporter writes."""
    fam = family_of(trained.model).name
    if fam not in EXPORTED_FAMILIES:
        raise ExportError(f"the NIR and integer C export of the {fam} family is not built yet")


#: the families an export writes (export_design looks up their writer)
EXPORTED_FAMILIES = ("stdp", "diet")


def _check_writable(out_dir: Path) -> None:
    """A one-line error, before any work, where the export cannot be staged: ``out_dir``
    is a file, or the folder it would be staged in cannot be written. Creates nothing."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError(f"{out_dir} exists and is not a folder")
    stage = stage_parent(out_dir)
    try:
        if not stage.is_dir():
            raise NotADirectoryError(20, "Not a directory")
        with tempfile.NamedTemporaryFile(dir=stage, prefix=".tinysnn-export-"):
            pass
    except OSError as e:
        raise ExportError(f"cannot write to {out_dir}: {e.strerror or e}") from None


def export_design(
    trained: Trained,
    quant: QuantSpec | None,
    out_dir: Path,
    data_dir: str | None = None,
    test_samples: int = 1000,
    progress: Progress = no_progress,
    title: str | None = None,
    force: bool = False,
    extra: Mapping[str, bytes | str] | None = None,
    refuse_non_empty: bool = True,
) -> ExportResult:
    """Export ``trained`` under ``quant`` into ``out_dir``; None: the design point its
    checkpoint's record names (``Trained.design_quant``), else as trained.

    ``extra`` (name -> contents) are written beside, moved in with the rest. Without
    ``force`` an ``out_dir`` that holds anything is refused (``refuse_non_empty``; else
    only one that holds a file of the same name as one the export writes), before any
    work is done."""
    check_family(trained)
    if quant is None:
        quant = trained.design_quant
    q = quant if quant is not None else trained.quant
    check_expressible(q)
    if test_samples < 1:
        raise ExportError(f"--test-samples must be at least 1, got {test_samples}")
    _check_writable(out_dir)
    if family_of(trained.model).name == "diet":  # the gradient-trained family's writer
        from tinysnn_dse.export.diet_export import export_diet

        return export_diet(trained, quant, out_dir, data_dir, test_samples, progress,  # type: ignore[no-any-return]
                           title, force, extra, refuse_non_empty)  # fmt: skip
    names = None if refuse_non_empty else [*EXPORT_NAMES, *(extra or {})]
    check_clobber(out_dir, names, force, "the export")
    n_steps = trained.model.encoding.for_inference().steps
    cap = spikes.CapturedImages(0, n_steps)
    ev = evaluate_checkpoint(trained, quant, data_dir, test_samples, "cpu", progress, capture=cap,
                             at_most=True)  # fmt: skip
    assert ev.deployed is not None and ev.test_counts is not None
    dep = ev.deployed
    why = integer.why_not(dep.model, dep.qz)
    if why is not None:
        raise ExportError(f"the integer C export cannot express this design: {why}")
    d = integer.design_of(dep.model, dep.qz)
    assert d is not None
    rec = ev.record
    n_img = int(ev.test_counts.shape[0])
    cap.n_images = n_img
    title = title or rec.key
    with staging(out_dir, f"the export to {out_dir}", f".{out_dir.name}.export-") as tmp:
        files, cm = _write_all(tmp, ev, d, cap, title)
        for name, data in (extra or {}).items():
            raw = data.encode() if isinstance(data, str) else data
            (tmp / name).write_bytes(raw)
        files = [*extra, *files] if extra else files
        move_in(tmp, out_dir)
    return ExportResult(
        out_dir=out_dir,
        files=files,
        test_samples=n_img,
        accuracy=rec.outcome.accuracy,
        parameter_bytes=cm.parameter_bytes + cm.vmem_bytes,
        eq4_bytes=rec.memory.bits / 8,
        evaluation=ev,
        design=d,
    )


def _write_all(
    tmp: Path, ev: Evaluation, d: integer.IntDesign, cap: spikes.CapturedImages, title: str
) -> tuple[list[str], c_mod.CModel]:
    """Every file of the export into ``tmp``: their paths, and the C model."""
    assert ev.deployed is not None and ev.test_counts is not None
    assert ev.assignment is not None  # the STDP family's (check_family)
    dep, rec = ev.deployed, ev.record
    n_classes = int(ev.assignment.proportions.shape[1])
    cm = c_mod.build(dep.net, dep.model, d, ev.assignment, n_classes, title)
    cdir = tmp / "c"
    written = [str(p.relative_to(tmp)) for p in c_mod.write(cm, cdir)]
    assert ev.test_labels is not None
    labels = ev.test_labels.numpy().astype(np.int64)
    enc = dep.model.encoding
    spikes.write(cdir / "test_spikes.bin", cap, labels, dep.model.n_in, 1 + int(enc.max_boosts))
    if enc.encoder == "counter":  # the pixels and keys the chip's encoder starts from
        spikes.write_pixels(cdir / "test_pixels.bin", cap, labels, dep.model.n_in)
        written.append("c/test_pixels.bin")
    pred = readout.predict(ev.test_counts, ev.assignment, n_classes, dep.model.readout)
    (cdir / "expected.txt").write_text(
        "".join(f"{int(p)} {int(y)}\n" for p, y in zip(pred.tolist(), labels.tolist(), strict=True))
    )
    written += ["c/test_spikes.bin", "c/expected.txt"]
    meta = {
        "tinysnn": __version__,
        "design_key": rec.key,
        "time_unit": "s",
        "dt_s": enc.dt_ms / 1000.0,
        "steps_per_presentation": enc.steps,
        "voltage": "mV relative to each population's resting potential",
        "formats": dict(rec.formats),
        "rounding": d.rounding,
        "datapath": "integer (docs/model.md, Integer inference); NIR holds its real values",
        "readout": dep.model.readout,
        "min_spikes": int(enc.min_spikes),
        "max_boosts": int(enc.max_boosts),
        "rate_boost_hz": float(enc.rate_boost_hz),
        "max_rate_hz": float(enc.max_rate_hz),
    }
    # the readout as data a consumer applies to the excitatory node's spike counts
    w_ro, div = readout.class_weights(ev.assignment, n_classes, dep.model.readout)
    meta["readout_weight"] = w_ro.numpy().T.astype(np.int64)  # [classes, neurons]
    meta["readout_divisor"] = div.numpy().astype(np.int64)  # [classes]
    meta["readout_rule"] = (
        "score_k = (sum_j readout_weight[k, j] * count_j) / readout_divisor[k], count_j the "
        "spikes of exc neuron j over the (last) presentation; the class is the first k of "
        "the largest score, -1 where every score is 0"
    )
    graph = nir_graph.build(dep.net, dep.model, d, dep.qz, meta)
    nir_graph.write(graph, tmp / "model.nir")
    written.append("model.nir")
    if dep.model.topology == Topology.LATERAL:  # the variant Norse's node import reads as is
        from tinysnn_dse.export import nir_check

        nir_graph.write(nir_check.rewrite(graph), tmp / "model.norse.nir")
        written.append("model.norse.nir")
    (tmp / "evaluation.json").write_text(json.dumps(rec.to_dict(), indent=2, sort_keys=True) + "\n")
    written.append("evaluation.json")
    acc_expected = float((pred == ev.test_labels).double().mean())
    sizes = [2 * enc.steps + 2 * int(p.inputs.shape[0])
             for pres in cap.presentations.values() for p in pres]  # fmt: skip
    headers = ("tinysnn.h", "model.h", "tsnn_common.h")
    ram = Ram(
        tuple(ram_mod.of_export(cdir, "tinysnn.c", headers)),
        max(sizes, default=0),
        sum(sizes) / len(sizes) if sizes else 0.0,
        sum(a.bytes for a in ram_mod.of_export(cdir, "main.c", headers)),
    )
    (tmp / "README.md").write_text(readme(rec, d, cm, dep.model, acc_expected, len(labels), ram))
    written.append("README.md")
    return written, cm
