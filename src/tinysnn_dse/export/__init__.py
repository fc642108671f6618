"""``tinysnn export``: a selected design as files that leave the tool (issue 16;
method.md section 9; docs/model.md, "Integer inference" and "Export").

``export_design`` re-tests a checkpoint under the design's quantization exactly as
``tinysnn evaluate`` does (same generator, same spikes, same formats), capturing the
input of every presentation of its first ``test_samples`` test images, and writes:

- ``model.nir``: the inference network as a NIR graph (:mod:`nir_graph`);
- ``c/``: integer-only C99 (:mod:`c`), ``test_spikes.bin`` (:mod:`spikes`) and
  ``expected.txt`` (``predicted_label true_label`` per image, from the simulator);
- ``evaluation.json`` (the evaluation's record) and ``README.md`` (what each file is, the
  formats, how to build and run, the memory map against Eq. 4).

Everything is written into a temporary folder beside ``out_dir`` and moved in at the end,
so a failure (a full disk included: one line) leaves nothing half-written. A folder that
is not empty is refused unless ``force`` (then files of the same name are replaced).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinysnn_dse import __version__
from tinysnn_dse.core import integer, readout
from tinysnn_dse.core.params import ModelConfig, QuantSpec
from tinysnn_dse.errors import ConfigError
from tinysnn_dse.export import c as c_mod
from tinysnn_dse.export import nir_graph, spikes
from tinysnn_dse.files import check_clobber, missing_dirs, remove_empty, write_guard
from tinysnn_dse.records import Record
from tinysnn_dse.runner import Evaluation, Progress, Trained, evaluate_checkpoint, no_progress

#: what an export writes at the top of its folder
EXPORT_NAMES = ("model.nir", "c", "evaluation.json", "README.md")


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


def _staging_dir(out_dir: Path) -> Path:
    """Where the export is staged: ``out_dir`` if it exists, else the nearest existing
    folder above it (on the same file system, so moving the files in is a rename); creates
    nothing. A one-line error where that folder cannot be written."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError(f"{out_dir} exists and is not a folder")
    stage = out_dir if out_dir.is_dir() else out_dir.resolve().parent
    while not stage.exists():
        stage = stage.parent
    try:
        if not stage.is_dir():
            raise NotADirectoryError(20, "Not a directory")
        with tempfile.NamedTemporaryFile(dir=stage, prefix=".tinysnn-export-"):
            pass
    except OSError as e:
        raise ExportError(f"cannot write to {out_dir}: {e.strerror or e}") from None
    return stage


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
    if quant is None:
        quant = trained.design_quant
    q = quant if quant is not None else trained.quant
    check_expressible(q)
    if test_samples < 1:
        raise ExportError(f"--test-samples must be at least 1, got {test_samples}")
    parent = _staging_dir(out_dir)
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
    made = missing_dirs(out_dir)
    try:
        with write_guard(f"the export to {out_dir}"):
            tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".{out_dir.name}.export-"))
            try:
                files, cm = _write_all(tmp, ev, d, cap, title)
                for name, data in (extra or {}).items():
                    raw = data.encode() if isinstance(data, str) else data
                    (tmp / name).write_bytes(raw)
                files = [*extra, *files] if extra else files
                _move_in(tmp, out_dir)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        remove_empty(made)
        raise
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
    dep, rec = ev.deployed, ev.record
    n_classes = int(ev.assignment.proportions.shape[1])
    cm = c_mod.build(dep.net, dep.model, d, ev.assignment, n_classes, title)
    cdir = tmp / "c"
    written = [str(p.relative_to(tmp)) for p in c_mod.write(cm, cdir)]
    assert ev.test_labels is not None
    labels = ev.test_labels.numpy().astype(np.int64)
    enc = dep.model.encoding
    spikes.write(cdir / "test_spikes.bin", cap, labels, dep.model.n_in, 1 + int(enc.max_boosts))
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
    graph = nir_graph.build(dep.net, dep.model, d, dep.qz, meta)
    nir_graph.write(graph, tmp / "model.nir")
    written.append("model.nir")
    (tmp / "evaluation.json").write_text(json.dumps(rec.to_dict(), indent=2, sort_keys=True) + "\n")
    written.append("evaluation.json")
    acc_expected = float((pred == ev.test_labels).double().mean())
    (tmp / "README.md").write_text(_readme(rec, d, cm, dep.model, acc_expected, len(labels)))
    written.append("README.md")
    return written, cm


def _move_in(tmp: Path, out_dir: Path) -> None:
    """Move the files of ``tmp`` into ``out_dir`` (created if need be), replacing the
    ones of an earlier export."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for p in tmp.iterdir():
        dest = out_dir / p.name
        if dest.is_dir():
            shutil.rmtree(dest)
        elif dest.exists():
            dest.unlink()
        p.replace(dest)


def _fmt_line(name: str, f: object, what: str) -> str:
    from tinysnn_dse.core.quant import FixedPoint

    assert isinstance(f, FixedPoint)
    sign = "signed" if f.signed else "unsigned"
    q = f"{'s' if f.signed else 'u'}Q{f.int_bits}.{f.frac_bits}"
    rng = f"step 2^{-f.frac_bits} = {f.eps:g}, range [{f.lo:g}, {f.hi:g}]"
    return f"| {name} | {f.bits} | {q} | {sign}, {rng} | {what} |"


def _readme(rec: Record, d: integer.IntDesign, cm: c_mod.CModel, model: ModelConfig,
            acc: float, n_img: int) -> str:  # fmt: skip
    """The export folder's README: the files, the formats, how to build and run, the
    memory map."""
    enc = model.encoding
    inhibitory = model.topology == "inhibitory"
    mem = rec.memory
    eq4 = mem.bits
    rows = [f"| `{a.name}` | {a.what} | {a.elements:,} x {a.bits} | {a.elements * a.bits:,} | "
            f"{a.bytes:,} |" for a in cm.arrays]  # fmt: skip
    param_bits = sum(a.elements * a.bits for a in cm.arrays)
    vm_bits = cm.vmem_neurons * d.vmem.bits
    rows.append(f"| `v`{', `vi`' if inhibitory else ''} (RAM) | Vmem state | "
                f"{cm.vmem_neurons:,} x {d.vmem.bits} (held in int{cm.vmem_ctype_bits}_t) | "
                f"{vm_bits:,} | {cm.vmem_bytes:,} |")  # fmt: skip
    total_bits = param_bits + vm_bits
    total_bytes = cm.parameter_bytes + cm.vmem_bytes
    pad = total_bytes * 8 - total_bits
    inh_mat = 2 * model.n_exc * model.n_exc * d.weight.bits if inhibitory else 0
    diff_lines = [
        f"- Packing padding: {pad:,} bits ({pad // 8:,} bytes): each packed array is rounded "
        f"up to whole bytes, and each {d.vmem.bits}-bit potential is held in a "
        f"{cm.vmem_ctype_bits}-bit C integer.",
    ]
    if inhibitory:
        diff_lines.append(
            f"- Eq. 4 counts the baseline's two inhibitory matrices (exc -> inh one to one, "
            f"inh -> exc all but self) as stored {model.n_exc} x {model.n_exc} matrices at "
            f"the weight precision ({inh_mat:,} bits), as BindsNET stores them. Their entries "
            f"are two constants (`TSNN_WEI`, `TSNN_WREC`, on the Vmem grid; they do not fit "
            f"the weight format), so the export holds 2 constants instead."
        )
    readout_bits = sum(a.elements * a.bits for a in cm.readout)
    readout_names = ", ".join(f"`{a.name}`" for a in cm.readout)
    lines = [
        f"# Exported design `{rec.key}`",
        "",
        f"Written by `tinysnn export` (tinysnn {__version__}). Model {model.model}, "
        f"{model.n_in} inputs, {model.n_exc} excitatory neurons "
        f"({'with an inhibitory layer' if inhibitory else 'direct lateral inhibition'}), "
        f"{d.rounding} rounding, {enc.steps} steps of {enc.dt_ms:g} ms per presentation, "
        f"readout `{model.readout}`.",
        "",
        f"Accuracy of `c/expected.txt` on the first {n_img:,} test images: "
        f"**{acc * 100:.2f} %**, the accuracy of the simulator's evaluation under the same "
        f"options (`evaluation.json`, `tinysnn evaluate ... --test-samples {n_img}`): "
        f"{rec.outcome.accuracy * 100:.2f} %.",
        "",
        "## Files",
        "",
        "| file | what it is |",
        "| --- | --- |",
        "| `model.nir` | the inference network as a NIR graph (HDF5; `nir.read`) |",
        "| `c/model.h` | sizes, formats and the integer datapath's constants |",
        "| `c/model_data.h` | the parameters as const arrays, packed at their bit widths |",
        "| `c/tinysnn.c`, `c/tinysnn.h` | the integer inference routine (C99; no float, "
        "no malloc) |",
        "| `c/main.c` | reads a spike file, prints one predicted label per line |",
        f"| `c/test_spikes.bin` | the input spike trains of the first {n_img:,} test images, "
        "every presentation the simulator ran |",
        "| `c/expected.txt` | per image: `predicted_label true_label`, from the simulator |",
        f"| `evaluation.json` | the simulator's record of this evaluation (the first {n_img:,} "
        "test images) |",
        "",
        "## Formats",
        "",
        "A value is its integer code times the step; the C holds codes only.",
        "",
        "| parameter | bits | Qi.f | | held in |",
        "| --- | ---: | --- | --- | --- |",
        _fmt_line("weights", d.weight, "`tsnn_w`"),
        _fmt_line("Vmem", d.vmem, "`tsnn_vmem_t v[]`"),
        _fmt_line("Vth", d.vth, "`tsnn_vth`" + (", `tsnn_vth_inh`" if inhibitory else "")),
        "",
        f'Datapath (docs/model.md, "Integer inference"): leak factor D = {d.exc.decay} / '
        f"2^16"
        + (f" (inhibitory {d.inh.decay} / 2^16)" if inhibitory else "")
        + f"; the accumulator keeps {d.acc_frac} fractional bits and each step rounds off "
        f"{d.k} of them once; resting and reset potentials {d.exc.rest} and {d.exc.reset} "
        f"(Vmem codes), refractory {d.exc.ref_steps} steps, recurrent weight {d.w_rec}"
        + (
            f", exc -> inh {d.w_exc_inh}, inhibitory threshold {d.inh_thr} (Vth code)"
            if inhibitory
            else ""
        )  # fmt: skip
        + ".",
        "",
        "## Build and run the C",
        "",
        "```console",
        "$ cd c",
        "$ cc -std=c99 -O2 -Wall -Wextra -Werror -o tinysnn tinysnn.c main.c",
        "$ ./tinysnn test_spikes.bin > predicted.txt          # one label per line",
        "$ cut -d' ' -f1 expected.txt | diff - predicted.txt && echo bit-exact",
        "$ ./tinysnn test_spikes.bin --counts | head -1       # label, then each neuron's count",
        "```",
        "",
        "`main` presents an image again (the file's next presentation of it, drawn at a "
        f"rate raised by {enc.rate_boost_hz:g} Hz) while it draws fewer than "
        f"{enc.min_spikes} spikes, at most {enc.max_boosts} times, as the simulator does; "
        "it exits 3 where an image needs a presentation the file lacks.",
        "",
        "### The spike file (`test_spikes.bin`, little-endian)",
        "",
        "```",
        'header        "TSNNSPK1"; uint32 version (1), images, inputs, steps, '
        "presentations at most",
        "per image     int32 true label; uint32 presentations stored",
        "  per presentation",
        "              uint64 stochastic-rounding key (0 unless rounding is stochastic)",
        "              uint32 input spikes in all",
        "              uint16[steps] input spikes at each step",
        "              uint16[spikes] the spiking inputs, step by step, ascending",
        "```",
        "",
        "### On a microcontroller",
        "",
        "- Put the `static const` arrays of `model_data.h` in flash (they are const already; "
        'some toolchains want a section attribute, e.g. `__attribute__((section(".rodata")))`'
        " or `PROGMEM`).",
        "- Drop `main.c` (file I/O): call `tsnn_init()` once, then per image "
        "`tsnn_present()` with a `tsnn_presentation` built from your own encoder's spikes "
        "(and your own re-presentation policy), and `tsnn_classify()` on its counts.",
        "- RAM: the state arrays of `tinysnn.c` (potentials, refractory counters, the "
        "recurrent and input accumulators, int64 each); no heap, no recursion.",
        "",
        "## Load the NIR graph",
        "",
        "```python",
        "import nir",
        'g = nir.read("model.nir")',
        'print(g.nodes.keys(), g.edges, g.metadata["formats"])',
        "```",
        "",
        "Potentials are in mV relative to each population's resting potential, time in "
        "seconds; LIF `tau = dt / (1 - D / 2^16)` and `r = tau / dt`, so forward Euler at dt "
        "reproduces the simulator's step. What NIR cannot express (the refractory period, "
        "`>=` against NIR's `>`, the Vmem rounding of every step, re-presentation of a "
        "silent image, the readout) is in the node and graph metadata; docs/model.md "
        '("Export") gives the measured agreement with Norse\'s NIR import.',
        "",
        "## Memory map",
        "",
        "| array | what | elements x bits | bits | bytes in C |",
        "| --- | --- | --- | ---: | ---: |",
        *rows,
        f"| **total** | | | **{total_bits:,}** | **{total_bytes:,}** |",
        "",
        f"Paper Eq. 4 (`evaluation.json`, `memory.bits`): **{eq4:,} bits = {eq4 / 8:,.1f} "
        f"bytes** ({mem.detail.get('memory_format', 'dense')} weight storage). The export "
        f"holds {total_bits:,} bits in {total_bytes:,} bytes:",
        "",
        *diff_lines,
        f"- Not in Eq. 4: the readout table ({readout_names}: {readout_bits:,} bits) and the "
        "working state of `tinysnn.c` (refractory counters, accumulators).",
        "",
    ]
    return "\n".join(lines)
