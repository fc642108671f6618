"""The ``tinysnn`` command line: a thin adapter over the library.

The only module that imports Typer and rich. Each command gathers its options, calls one
library function, and renders the result. Every user error (the project's
:class:`~tinysnn_dse.errors.TinySNNError`, or a usage error from Typer) becomes one line on
stderr, ``error: ...``, and exit code 2.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shlex
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from tinysnn_dse import __version__, event_data
from tinysnn_dse import data as data_mod
from tinysnn_dse.axes import AXES, BY_NAME, MAX_BITS, MIN_BITS
from tinysnn_dse.core.params import (
    READOUTS,
    QuantSpec,
    param_names,
    preset,
    validate_quant,
)
from tinysnn_dse.errors import ConfigError, Interrupted, TinySNNError
from tinysnn_dse.records import Record
from tinysnn_dse.runner import (
    RunSettings,
    evaluate_checkpoint,
    family_of,
    load_checkpoint,
    prepare_out_dir,
    resolve_device,
    save,
    train_and_evaluate,
)

app = typer.Typer(
    name="tinysnn",
    help="Design-space exploration for memory- and energy-efficient spiking neural networks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)


def console_out() -> Console:
    """stdout console; wide when not a terminal, so that tables are not cut in logs."""
    c = Console()
    return c if c.is_terminal else Console(width=200)


DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Folder with <dataset>/ IDX files (then $TINYSNN_DATA_DIR, then the user cache).",
    ),
]
Device = Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")]


# ------------------------------------------------------------------ shared option groups
# Declared once and used by every command that takes them; the help of a design axis is
# its row of the axis table (axes.AXES), so a new value shows up everywhere at once.


def axis_help(name: str, default: str = "") -> str:
    """``--<name>``'s help from the axis table: what it is, what it takes, its default."""
    a = BY_NAME[name]
    if a.kind == "choice":
        takes = ", ".join(a.choices)
    elif a.kind == "bits":
        takes = f"fp32 (no quantization) or {MIN_BITS}-{MAX_BITS}"
    else:
        takes = f"an integer >= {a.minimum}"
    return f"{a.doc[:1].upper()}{a.doc[1:]}: {takes}." + (f" {default}" if default else "")


Model = Annotated[str, typer.Option("--model", help=axis_help("model"))]
Neurons = Annotated[int, typer.Option("--neurons", help=axis_help("neurons"))]
Scheme = Annotated[str, typer.Option("--scheme", help=axis_help("scheme"))]
Rounding = Annotated[str, typer.Option("--rounding", help=axis_help("rounding"))]
WeightBits = Annotated[str, typer.Option("--weight-bits", help=axis_help("weight_bits"))]
VmemBits = Annotated[str, typer.Option("--vmem-bits", help=axis_help("vmem_bits"))]
VthBits = Annotated[str, typer.Option("--vth-bits", help=axis_help("vth_bits"))]
_INT_BITS = "Integer bits of the {} format (default: derived from the observed range)."
WeightIntBits = Annotated[
    int | None, typer.Option("--weight-int-bits", help=_INT_BITS.format("weight"))
]
VmemIntBits = Annotated[int | None, typer.Option("--vmem-int-bits", help=_INT_BITS.format("Vmem"))]
VthIntBits = Annotated[int | None, typer.Option("--vth-int-bits", help=_INT_BITS.format("Vth"))]
#: evaluate and export: PTQ of a saved network (ITQ would need retraining)
RetestScheme = Annotated[
    str | None,
    typer.Option(
        "--scheme",
        help="ptq to re-test under a new PTQ (implied by a width given; default: as trained).",
    ),
]
Dataset = Annotated[
    str,
    typer.Option(
        "--dataset",
        help=f"Data set: {', '.join(data_mod.DATASETS)}, or the path of an .npz file "
        "(x_train, y_train, x_test, y_test), of a folder of IDX files, or of an N-MNIST, "
        "DVS Gesture or SHD folder (read with tonic).",
    ),
]
Threads = Annotated[int | None, typer.Option("--threads", help="torch CPU threads.")]
BatchSize = Annotated[
    int | None,
    typer.Option("--batch-size", help="Inference batch size (default: 256 CPU, 4096 CUDA)."),
]
Readout = Annotated[
    str | None,
    typer.Option("--readout", help=f"{', '.join(READOUTS)} (default: the model's or as trained)."),
]


@dataclasses.dataclass(frozen=True)
class QuantOptions:
    """The quantization options of one command, as given (strings; parsed by :meth:`spec`)."""

    scheme: str | None = "ptq"
    rounding: str = "nearest"
    weight_bits: str = "fp32"
    vmem_bits: str = "fp32"
    vth_bits: str = "fp32"
    weight_int_bits: int | None = None
    vmem_int_bits: int | None = None
    vth_int_bits: int | None = None

    def given(self) -> bool:
        """Any width or integer-bit override given (a PTQ setting, even without --scheme)."""
        widths = (self.weight_bits, self.vmem_bits, self.vth_bits)
        ints = (self.weight_int_bits, self.vmem_int_bits, self.vth_int_bits)
        return any(parse_bits("--bits", w) is not None for w in widths) or any(
            b is not None for b in ints
        )

    def spec(self) -> QuantSpec:
        return validate_quant(
            QuantSpec(
                scheme=BY_NAME["scheme"].parse(self.scheme or "ptq", "--scheme"),  # type: ignore[arg-type]
                rounding=BY_NAME["rounding"].parse(self.rounding, "--rounding"),  # type: ignore[arg-type]
                weight_bits=parse_bits("--weight-bits", self.weight_bits),
                vmem_bits=parse_bits("--vmem-bits", self.vmem_bits),
                vth_bits=parse_bits("--vth-bits", self.vth_bits),
                weight_int_bits=self.weight_int_bits,
                vmem_int_bits=self.vmem_int_bits,
                vth_int_bits=self.vth_int_bits,
            )
        )


def parse_bits(name: str, value: str | None) -> int | None:
    """``fp32``/``float32``/``none`` -> None (FP32); an integer in [2, 32] -> that width."""
    return BY_NAME["weight_bits"].parse(value, name)  # type: ignore[no-any-return]


def parse_params(items: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"--param {item!r}: expected NAME=VALUE (see `tinysnn params`)")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def choice(name: str, value: str, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise ConfigError(f"{name}: unknown value {value!r}; choose one of {', '.join(allowed)}")
    return value


@contextmanager
def progress_bar(enabled: bool) -> Iterator[Any]:
    """A rich progress display on stderr when it is a terminal; a no-op callback otherwise."""
    if not enabled or not err.is_terminal:
        yield lambda phase, done, total: None
        return
    cols = (
        TextColumn("[bold]{task.description:<6}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>8} img/s"),
        TimeRemainingColumn(),
    )
    with Progress(*cols, console=err, transient=False) as prog:
        tasks: dict[str, Any] = {}

        def cb(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = prog.add_task(phase, total=total, rate="")
            task = tasks[phase]
            prog.update(task, completed=done, total=total)
            speed = prog.tasks[task].speed
            prog.update(task, rate=f"{speed:,.0f}" if speed else "")

        yield cb


def render_record(record: Record) -> None:
    t = Table(show_header=False, box=None)
    dp, o, m = record.design_point, record.outcome, record.memory
    rows = [
        ("design point", f"{dp.model} {dp.neurons} neurons, {dp.quant_label}"),
        ("accuracy", f"{o.accuracy * 100:.2f} % on {o.eval_set} ({o.readout} readout)"),
        (
            "memory",
            f"{m.kib:,.1f} KiB ({m.bits:,} bits); normalized {m.normalized:.4f} "
            f"({m.reference}); {m.vs_baseline_fp32:.4f} of the FP32 baseline",
        ),
        (
            "speed",
            f"train {o.train_images_per_s:,.1f} img/s ({o.train_seconds:.1f} s), "
            f"infer {o.infer_images_per_s:,.0f} img/s",
        ),
        ("formats", ", ".join(f"{k} {v}" for k, v in record.formats.items())),
        ("backends", ", ".join(f"{k} {v}" for k, v in record.backend.items())),
    ]
    if o.robustness:  # adversarial accuracy (runner.robustness)
        n = record.config.get("robustness", {}).get("samples", "")
        rows.append((
            "adversarial",
            f"on the first {n} test images ({o.robust_seconds:.1f} s): "
            + ", ".join(f"{k} {v * 100:.1f} %" for k, v in o.robustness.items()),
        ))  # fmt: skip
    for k, v in rows:
        t.add_row(f"[bold]{k}", v)
    Console().print(t)
    for msg in clipping_warnings(record):
        err.print(f"warning: {msg}", highlight=False)


def clipping_warnings(record: Record) -> list[str]:
    """What the record says a format clipped, one line each (docs/model.md, Quantization)."""
    out = []
    fmts, o = record.formats, record.outcome
    vth = o.vth_saturated_fraction or 0.0
    vth_train = o.train_vth_clipped_fraction or 0.0
    if vth > 0 or vth_train > 0:
        out.append(
            f"the Vth format {fmts['vth']} clipped thresholds ({vth:.1%} of the neurons at an "
            f"end, {vth_train:.1%} of the training updates); give more with --vth-int-bits"
        )
    vmem = o.vmem_saturated_fraction or 0.0
    vmem_train = o.train_vmem_saturated_fraction or 0.0
    if vmem > 0 or vmem_train > 0:
        out.append(
            f"the Vmem format {fmts['vmem']} clipped {vmem:.2%} of the test pass's roundings "
            f"({vmem_train:.2%} of training's); give more with --vmem-int-bits"
        )
    return out


@app.command()
def train(
    dataset: Dataset = "digits",
    neurons: Neurons = 100,
    model: Model = "tinysnn",
    train_samples: Annotated[int | None, typer.Option(help="Default: all.")] = None,
    test_samples: Annotated[int | None, typer.Option(help="Default: all.")] = None,
    assign_samples: Annotated[
        int | None, typer.Option(help="Training images used to assign labels. Default: all used.")
    ] = None,
    holdout: Annotated[
        int, typer.Option(help="Evaluate on the last N training images instead of the test set.")
    ] = 0,
    epochs: Annotated[int, typer.Option(help="Passes over the training images.")] = 1,
    scheme: Scheme = "ptq",
    rounding: Rounding = "nearest",
    weight_bits: WeightBits = "fp32",
    vmem_bits: VmemBits = "fp32",
    vth_bits: VthBits = "fp32",
    weight_int_bits: WeightIntBits = None,
    vmem_int_bits: VmemIntBits = None,
    vth_int_bits: VthIntBits = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="Model parameter NAME=VALUE (see `tinysnn params`)."),
    ] = None,
    readout: Readout = None,
    seed: Annotated[
        int, typer.Option(help="Seed of every random draw (0..2**62); same seed, same record.")
    ] = 0,
    device: Device = "auto",
    threads: Threads = None,
    batch_size: BatchSize = None,
    data_dir: DataDir = None,
    time_bins: Annotated[
        int | None,
        typer.Option(
            help="Event data: time bins of a sample (default 8); the diet "
            "family's timesteps a multiple or divisor of it."
        ),
    ] = None,
    spatial_factor: Annotated[
        float | None,
        typer.Option(help="Event data: scale of the sensor's positions, in (0, 1] (default 1)."),
    ] = None,
    out: Annotated[Path, typer.Option(help="Folder for model.pt and record.json.")] = Path(
        "runs/latest"
    ),
    as_json: Annotated[bool, typer.Option("--json", help="Print the record as JSON.")] = False,
) -> None:
    """Train one design point, test it, count its memory; write a checkpoint and a record."""
    quant = QuantOptions(
        scheme=scheme, rounding=rounding, weight_bits=weight_bits, vmem_bits=vmem_bits,
        vth_bits=vth_bits, weight_int_bits=weight_int_bits, vmem_int_bits=vmem_int_bits,
        vth_int_bits=vth_int_bits,
    ).spec()  # fmt: skip
    BY_NAME["model"].parse(model, "--model")
    events = None
    if time_bins is not None or spatial_factor is not None:
        bins = time_bins if time_bins is not None else event_data.TIME_BINS
        factor = spatial_factor if spatial_factor is not None else 1.0
        events = event_data.EventOptions(bins, factor)
    dataset = data_mod.check_name(dataset, "--dataset", events)
    n_in, n_classes = 64 if dataset == "digits" else 784, 10
    if data_mod.is_user_data(dataset):  # a user's data: its sizes from the files
        ds = data_mod.load(dataset)
        n_in, n_classes = ds.n_in, ds.n_classes
    overrides: dict[str, str] = {}
    if readout is not None:
        overrides["readout"] = choice("--readout", readout, READOUTS)
    overrides.update(parse_params(param))
    cfg = family_of(model).model(model, n_in, neurons, n_classes, dataset, overrides)
    settings = RunSettings(
        dataset=dataset,
        train_samples=train_samples,
        test_samples=test_samples,
        assign_samples=assign_samples,
        holdout=holdout,
        epochs=epochs,
        seed=seed,
        device=device,
        batch_size=batch_size,
        threads=threads,
    ).validate()
    created = not out.exists()
    prepare_out_dir(out)
    try:
        with progress_bar(True) as cb:
            trained, ev = train_and_evaluate(
                cfg, quant, settings, data_dir=str(data_dir) if data_dir else None, progress=cb
            )
        ckpt, rec = save(out, trained, ev)
    except BaseException:
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # leave nothing behind for a run that wrote nothing
        raise
    if as_json:
        typer.echo(json.dumps(ev.record.to_dict(), indent=2, sort_keys=True))
    else:
        render_record(ev.record)
        Console().print(f"checkpoint [bold]{ckpt}[/], record [bold]{rec}[/]")


def _retest(
    command: str, checkpoint: Path, device: str, readout: str | None, q: QuantOptions
) -> tuple[Any, QuantSpec | None]:
    """The checkpoint (with ``--readout`` applied) and the PTQ setting of ``evaluate`` and
    ``export`` (None: the checkpoint's own; a width given without ``--scheme`` is PTQ)."""
    trained = load_checkpoint(checkpoint, device)
    if readout is not None:
        choice("--readout", readout, READOUTS)
        if family_of(trained.model).name != "stdp":
            raise ConfigError(f"--readout: the {trained.model.model} family reads out by its "
                              "output layer; it has no assignment readouts")  # fmt: skip
        trained = dataclasses.replace(
            trained,
            model=dataclasses.replace(trained.model, readout=readout),  # type: ignore[arg-type]
        )
    if q.scheme is None and not q.given():
        return trained, None
    if BY_NAME["scheme"].parse(q.scheme or "ptq", "--scheme") == "itq":
        raise ConfigError(f"--scheme itq needs retraining; {command} accepts ptq only")
    return trained, q.spec()


@app.command()
def evaluate(
    checkpoint: Annotated[Path, typer.Argument(help="A model.pt written by `tinysnn train`.")],
    scheme: RetestScheme = None,
    rounding: Rounding = "nearest",
    weight_bits: WeightBits = "fp32",
    vmem_bits: VmemBits = "fp32",
    vth_bits: VthBits = "fp32",
    weight_int_bits: WeightIntBits = None,
    vmem_int_bits: VmemIntBits = None,
    vth_int_bits: VthIntBits = None,
    test_samples: Annotated[int | None, typer.Option(help="Default: as trained.")] = None,
    readout: Readout = None,
    attack: Annotated[
        list[str] | None,
        typer.Option("--attack", help="Also attack the model: fgsm or pgd (repeatable)."),
    ] = None,
    epsilon: Annotated[
        list[float] | None,
        typer.Option("--epsilon", help="Attack radius, infinity norm (repeatable; 0.1 0.2 0.3)."),
    ] = None,
    threat: Annotated[
        list[str] | None,
        typer.Option("--threat", help="white (own gradients) or transfer (from an ANN)."),
    ] = None,
    robust_samples: Annotated[
        int, typer.Option(help="With --attack: test images attacked (the first ones).")
    ] = 1000,
    device: Device = "cpu",
    data_dir: DataDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the record as JSON.")] = False,
) -> None:
    """Re-test a saved model, optionally under a PTQ setting, without retraining; with
    --attack, also its accuracy under FGSM / PGD (docs/model.md, "Robustness")."""
    from tinysnn_dse.runner.robustness import Robustness

    robust = None
    if attack or epsilon or threat:
        robust = Robustness.from_mapping(
            {"attacks": list(attack or ("fgsm", "pgd")),
             "epsilons": list(epsilon or (0.1, 0.2, 0.3)),
             "threats": list(threat or ("white", "transfer")), "samples": robust_samples},
            "--attack/--epsilon/--threat",
        )  # fmt: skip
    q = QuantOptions(
        scheme=scheme, rounding=rounding, weight_bits=weight_bits, vmem_bits=vmem_bits,
        vth_bits=vth_bits, weight_int_bits=weight_int_bits, vmem_int_bits=vmem_int_bits,
        vth_int_bits=vth_int_bits,
    )  # fmt: skip
    trained, quant = _retest("evaluate", checkpoint, device, readout, q)
    with progress_bar(True) as cb:
        record = evaluate_checkpoint(
            trained, quant, data_dir=str(data_dir) if data_dir else None,
            test_samples=test_samples, device=device, progress=cb, robustness=robust,
        ).record  # fmt: skip
    if as_json:
        typer.echo(json.dumps(record.to_dict(), indent=2, sort_keys=True))
    else:
        render_record(record)


@app.command()
def export(
    checkpoint: Annotated[Path, typer.Argument(help="A model.pt written by `tinysnn train`.")],
    out: Annotated[Path, typer.Option("--out", help="Folder to write the export into.")],
    scheme: RetestScheme = None,
    rounding: Rounding = "nearest",
    weight_bits: WeightBits = "fp32",
    vmem_bits: VmemBits = "fp32",
    vth_bits: VthBits = "fp32",
    weight_int_bits: WeightIntBits = None,
    vmem_int_bits: VmemIntBits = None,
    vth_int_bits: VthIntBits = None,
    test_samples: Annotated[
        int,
        typer.Option(
            help="Test images whose spikes and expected labels are written (at most all)."
        ),
    ] = 1000,
    readout: Readout = None,
    data_dir: DataDir = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Write into a folder that is not empty, replacing files of the same name.",
        ),
    ] = False,
) -> None:
    """Write a design as a NIR graph and bit-exact integer C, with test spikes (README in OUT)."""
    from tinysnn_dse.export import export_design

    q = QuantOptions(
        scheme=scheme, rounding=rounding, weight_bits=weight_bits, vmem_bits=vmem_bits,
        vth_bits=vth_bits, weight_int_bits=weight_int_bits, vmem_int_bits=vmem_int_bits,
        vth_int_bits=vth_int_bits,
    )  # fmt: skip
    trained, quant = _retest("export", checkpoint, "cpu", readout, q)
    with progress_bar(True) as cb:
        res = export_design(
            trained, quant, out, data_dir=str(data_dir) if data_dir else None,
            test_samples=test_samples, progress=cb, force=force,
        )  # fmt: skip
    _export_summary(res)


def _export_summary(res: Any) -> None:
    console_out().print(
        f"exported to [bold]{res.out_dir}[/]: {', '.join(res.files)}\n"
        f"accuracy on the first {res.test_samples:,} test images {res.accuracy * 100:.2f} %; "
        f"C parameters and Vmem {res.parameter_bytes:,} bytes, Eq. 4 {res.eq4_bytes:,.1f} bytes "
        f"(README.md: the memory map, how to build and run)"
    )


@app.command()
def datasets(
    paths: Annotated[
        list[str] | None,
        typer.Argument(help="Your own data sets to check: .npz files or folders of IDX files."),
    ] = None,
    data_dir: DataDir = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List each data set, where it was found, and whether its checksums verify; with
    PATHS, load and check each of your own (one line each, the first problem found)."""
    rows = data_mod.status(str(data_dir) if data_dir else None)
    for p in paths or []:
        try:
            ds = data_mod.load(data_mod.check_name(p, p))
            rows.append(data_mod.DatasetStatus(
                p, ds.source.split(" (")[0], True,
                f"{len(ds.train_images) + len(ds.test_images)} samples of {ds.n_in} inputs, "
                f"{ds.n_classes} classes; {ds.source.split(' (', 1)[1].rstrip(')')}",
            ))  # fmt: skip
        except TinySNNError as e:
            rows.append(data_mod.DatasetStatus(p, None, False, str(e)))
    bad = [r for r in rows if r.name in (paths or []) and not r.verified]
    if as_json:
        typer.echo(json.dumps([r.__dict__ for r in rows], indent=2))
        if bad:
            raise typer.Exit(2)
        return
    t = Table("dataset", "location", "verified", "detail")
    for r in rows:
        ok = "-" if r.verified is None else ("yes" if r.verified else "[red]NO")
        t.add_row(r.name, r.location or "[dim]not found", ok, r.detail)
    Console().print(t)
    looked = ", ".join(str(p) for p in data_mod.search_roots(str(data_dir) if data_dir else None))
    Console().print(f"[dim]searched: {looked}")
    if bad:  # a data set of the user's that does not load: exit 2, its reason in one line
        err.print(f"error: {bad[0].detail}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2)


@app.command()
def mcu(
    export_dir: Annotated[Path, typer.Argument(help="A folder `tinysnn export` wrote.")],
    cpu: Annotated[
        list[str] | None,
        typer.Option(
            "--cpu", help="Core: cortex-m4 (default), cortex-m3 or cortex-m0; repeatable."
        ),
    ] = None,
    images: Annotated[int, typer.Option(help="Test images of the export to run.")] = 5,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Measure an export on a Cortex-M core: its C built with zig cc for the core and run on
    Unicorn's ARM emulator, counting instructions; the classes must be expected.txt's.
    Writes mcu.json and the README's "Cost on a Cortex-M core" section."""
    from tinysnn_dse.export import mcu as mcu_mod
    from tinysnn_dse.files import atomic_write

    if images < 1:
        raise typer.BadParameter(f"must be at least 1, got {images}", param_hint="--images")
    if not (export_dir / "c").is_dir() or not (export_dir / "README.md").is_file():
        raise ConfigError(f"{export_dir}: not a folder `tinysnn export` wrote (no c/ or README.md)")
    costs = []
    for core in cpu or ["cortex-m4"]:
        got = mcu_mod.measure(export_dir, core, images)
        if not got.classes_match:
            raise ConfigError(f"{export_dir}: the emulated {core} printed other classes than "
                              "expected.txt; nothing was written")  # fmt: skip
        costs.append(got)
    rows = [mcu_mod.to_dict(c) for c in costs]
    atomic_write(export_dir / "mcu.json", json.dumps(rows, indent=2) + "\n")
    readme = (export_dir / "README.md").read_text()
    atomic_write(export_dir / "README.md",
                 mcu_mod.with_section(readme, mcu_mod.readme_section(costs)))  # fmt: skip
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    t = Table("core", "presentations", "instr. / presentation", "instr. / image", "code bytes")
    for c in costs:
        t.add_row(c.cpu, str(c.presentations), f"{c.per_presentation_mean:,.0f}",
                  f"{c.per_image_mean:,.0f}", f"{c.code_bytes:,}")  # fmt: skip
    Console().print(t)
    Console().print(f"[dim]{export_dir}/mcu.json and README.md updated")


@app.command()
def params() -> None:
    """List every model parameter that --param NAME=VALUE can set, with its default."""
    cfg = preset("tinysnn", 784, 400)
    t = Table("parameter", "default (tinysnn preset)")
    for name in param_names():
        obj: Any = cfg
        for part in name.split("."):
            obj = getattr(obj, part)
        t.add_row(name, str(obj))
    Console().print(t)


@app.command()
def bench(
    dataset: Dataset = "mnist",
    neurons: Neurons = 400,
    model: Model = "tinysnn",
    steps: Annotated[int, typer.Option(help="Time steps per image (dt 1 ms).")] = 250,
    scheme: Scheme = "ptq",
    rounding: Rounding = "nearest",
    weight_bits: WeightBits = "fp32",
    vmem_bits: VmemBits = "fp32",
    vth_bits: VthBits = "fp32",
    train_images: Annotated[int, typer.Option(help="Learning presentations timed.")] = 200,
    infer_images: Annotated[int, typer.Option(help="Test images timed (batched).")] = 2000,
    batch_size: BatchSize = None,
    device: Device = "cpu",
    threads: Threads = None,
    data_dir: DataDir = None,
    reference: Annotated[
        bool, typer.Option(help="Time the plain torch reference path instead.")
    ] = False,
    design_points: Annotated[
        int,
        typer.Option(
            "--design-points",
            help="Also time K points trained together on shared input (tinysnn; CPU or CUDA).",
        ),
    ] = 1,
    checkpoint: Annotated[
        Path | None,
        typer.Option(help="Start from a trained model.pt (late-pass rates; its model is used)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Measure training and inference images per second of the simulator."""
    from tinysnn_dse.bench import benchmark

    BY_NAME["model"].parse(model, "--model")
    choice("--dataset", dataset, data_mod.DATASETS)
    if batch_size is not None and batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {batch_size}")
    if min(steps, train_images, infer_images, neurons, design_points) < 1:
        raise ConfigError(
            "--steps, --neurons, --train-images, --infer-images and --design-points must be >= 1"
        )
    quant = QuantOptions(
        scheme=scheme, rounding=rounding, weight_bits=weight_bits, vmem_bits=vmem_bits,
        vth_bits=vth_bits,
    ).spec()  # fmt: skip
    res = benchmark(
        dataset=dataset, neurons=neurons, model=model, steps=steps, quant=quant,
        train_images=train_images, infer_images=infer_images, batch_size=batch_size,
        device=device, threads=threads, data_dir=str(data_dir) if data_dir else None,
        reference=reference, design_points=design_points,
        checkpoint=str(checkpoint) if checkpoint else None,
    )  # fmt: skip
    if as_json:
        typer.echo(json.dumps(res, indent=2))
        return
    s = res["settings"]
    Console().print(
        f"{s['model']} {s['neurons']} neurons, {s['steps']} steps, {s['quant']}, {s['dataset']}, "
        f"{s['device']} x{s['threads']} threads: train [bold]{res['train_images_per_s']:,.1f}[/] "
        f"img/s ({res['backend']['train']}), infer [bold]{res['infer_images_per_s']:,.0f}[/] img/s "
        f"(batch {s['batch_size']})"
    )
    if res["design_batch"]:
        m = res["design_batch"]
        Console().print(
            f"{m['design_points']} design points together: train [bold]"
            f"{m['train_images_per_s']:,.1f}[/] img/s aggregate "
            f"({m['speedup_vs_single']:.2f}x the single point)"
        )


# --------------------------------------------------------------------- exploration

#: the search spaces shipped inside the package (package data; the repository's
#: ``search_spaces/`` links to them)
SHIPPED_SPACES = Path(__file__).resolve().parent / "spaces"
Storage = Annotated[
    str,
    typer.Option(
        "--storage",
        help="Optuna storage: a SQLAlchemy URL (sqlite:///FILE, postgresql://...) or journal:FILE.",
    ),
]
StudyName = Annotated[
    str | None, typer.Option("--study", help="Study name (default: the space's `study`).")
]


def _folder(value: str | None) -> Path | None:
    """A folder option: an empty string is a mistake, not the current folder."""
    if value is not None and not value.strip():
        raise ConfigError("--artifacts is empty; give a folder")
    return None if value is None else Path(value)


Artifacts = Annotated[
    Path | None,
    typer.Option(
        "--artifacts",
        parser=_folder,
        help="Folder for checkpoints and shared trainings (default: beside a SQLite or "
        "journal file, else ./tinysnn-artifacts).",
    ),
]
Mu = Annotated[float, typer.Option("--mu", help="Trade-off mu of R = A - mu * M (>= 0).")]
MinAcc = Annotated[
    float | None, typer.Option("--min-accuracy", help="Minimum accuracy (fraction).")
]
MaxMem = Annotated[float | None, typer.Option("--max-memory-kb", help="Maximum memory (KiB).")]
MaxEnergy = Annotated[
    float | None,
    typer.Option("--max-energy-mj", help="Maximum energy (mJ, whole phase; see --energy-*)."),
]
MaxLatency = Annotated[
    float | None,
    typer.Option("--max-latency-ms", help="Maximum mean presentation time per test image (ms)."),
]
MinRobust = Annotated[
    float | None,
    typer.Option(
        "--min-robust-accuracy",
        help="Minimum adversarial accuracy (fraction) at --robust-key; a point that did not "
        "measure it is not admissible.",
    ),
]
RobustKey = Annotated[
    str | None,
    typer.Option(
        "--robust-key",
        help="The adversarial accuracy THREAT-ATTACK-EPSILON (e.g. transfer-pgd-0.1, the "
        "default of --min-robust-accuracy) that constraints read; given, the Pareto set "
        "also maximizes it.",
    ),
]
EnergyPhase = Annotated[
    str, typer.Option("--energy-phase", help="Phase --max-energy-mj limits: infer or train.")
]
EnergySource = Annotated[
    str, typer.Option("--energy-source", help="modelled (host independent) or measured.")
]
MemRef = Annotated[
    str,
    typer.Option(
        "--memory-reference",
        help="M against: same-topology (method default) or baseline-fp32.",
    ),
]


def resolve_space_path(space: str) -> Path:
    """A path, or a space's name: ``./search_spaces/NAME.yaml`` (a user's own) first, then
    the shipped ones (``smoke``, ``paper-mnist``, ...)."""
    p = Path(space)
    if p.is_file():
        return p
    for root in (Path("search_spaces"), SHIPPED_SPACES):
        cand = root / (space if space.endswith((".yaml", ".yml")) else f"{space}.yaml")
        if cand.is_file():
            return cand
    shipped = sorted(q.stem for q in SHIPPED_SPACES.glob("*.yaml"))
    hint = f"; shipped spaces: {', '.join(shipped)}" if shipped else ""
    raise ConfigError(f"{space}: no such search-space file{hint}")


#: limits on a search-space file: its size, and its YAML nodes with every alias expanded
#: (a 1 KB "billion laughs" file expands to billions)
MAX_SPACE_BYTES = 1 << 20
MAX_YAML_NODES = 200_000


def _yaml_nodes(root: Any, path: Path) -> None:
    """Count ``root``'s nodes as a reader would see them, aliases expanded (memoized, so
    linear in the file); refuse a recursive alias or more than :data:`MAX_YAML_NODES`."""
    import yaml

    memo: dict[int, int] = {}
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if id(node) in memo and not done:
            if memo[id(node)] < 0:
                raise ConfigError(f"{path}: a YAML alias refers to itself")
            continue
        kids: list[Any] = []
        if isinstance(node, yaml.SequenceNode):
            kids = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            kids = [n for kv in node.value for n in kv]
        if not done:
            memo[id(node)] = -1  # in progress
            stack.append((node, True))
            stack.extend((k, False) for k in kids)
            continue
        memo[id(node)] = n = 1 + sum(memo[id(k)] for k in kids)
        if n > MAX_YAML_NODES:
            raise ConfigError(
                f"{path}: more than {MAX_YAML_NODES:,} YAML values once aliases are expanded; "
                "a search space is far smaller"
            )


def load_space(space: str) -> Any:
    import yaml

    from tinysnn_dse.explore import parse_space

    path = resolve_space_path(space)
    try:
        size = path.stat().st_size
        if size > MAX_SPACE_BYTES:
            raise ConfigError(
                f"{path}: {size:,} bytes; a search-space file is at most {MAX_SPACE_BYTES:,}"
            )
        text = path.read_text()
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is not None:
            _yaml_nodes(node, path)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{path}: malformed YAML{where}: {problem}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read: {e}") from None
    except RecursionError:
        raise ConfigError(f"{path}: YAML nested too deeply") from None
    return parse_space(raw, str(path))


def _hv_reference(text: str | None, records: list[Any]) -> tuple[float, float, float]:
    """``--hv-reference A,KIB,UJ``, or 0 and 1.1 x the largest memory and energy."""
    if text is None:
        mem = max((r.memory.kib for r in records), default=1.0)
        e = [r.energy["infer"].modelled_j_per_sample * 1e6 for r in records if "infer" in r.energy]
        return (0.0, 1.1 * mem, 1.1 * max(e, default=1.0))
    try:
        a, m, u = (float(x) for x in text.split(","))
    except ValueError:
        raise ConfigError(
            f"--hv-reference {text!r}: expected three numbers ACCURACY,KIB,UJ"
        ) from None
    return (a, m, u)


def constraints(
    min_accuracy: float | None,
    max_memory_kb: float | None,
    max_energy_mj: float | None,
    energy_phase: str,
    energy_source: str,
    max_latency_ms: float | None = None,
    min_robust_accuracy: float | None = None,
    robust_key: str | None = None,
) -> Any:
    from tinysnn_dse.report.select import Constraints

    return Constraints(
        min_accuracy, max_memory_kb, max_energy_mj, energy_phase, energy_source, max_latency_ms,
        min_robust_accuracy, robust_key,
    ).validate()  # fmt: skip


@app.command()
def explore(
    space: Annotated[
        str, typer.Argument(help="Search-space YAML, or a shipped name (smoke, paper-mnist).")
    ] = "smoke",
    storage: Storage = "sqlite:///tinysnn.db",
    study: StudyName = None,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    devices: Annotated[
        str, typer.Option(help="Comma-separated devices for the workers: cpu, cuda:0,cuda:1.")
    ] = "cpu",
    threads: Annotated[
        int | None, typer.Option(help="torch threads per worker (default: cores / workers).")
    ] = None,
    n_trials: Annotated[
        int | None, typer.Option("--n-trials", help="tpe/nsga2: trials to run in all.")
    ] = None,
    power_w: Annotated[
        float | None,
        typer.Option("--power-w", help="Declared power (W) where no energy counter is readable."),
    ] = None,
    mu: Annotated[float, typer.Option(help="mu for the best reward shown while running.")] = 0.5,
    artifacts: Artifacts = None,
    data_dir: DataDir = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List the design points; run nothing.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
) -> None:
    """Run every design point of a search space as a trial of a resumable Optuna study."""
    sp = load_space(space)
    if dry_run:
        _print_points(sp, as_json)
        return
    if n_trials is not None and n_trials < 1:
        raise ConfigError(f"--n-trials must be at least 1, got {n_trials}")
    if not (math.isfinite(mu) and mu >= 0):
        raise ConfigError(f"--mu must be a non-negative number, got {mu}")
    from tinysnn_dse.explore import explore as run_explore
    from tinysnn_dse.report.select import reward

    devs = [d.strip() for d in devices.split(",") if d.strip()]
    for d in devs:
        resolve_device(d)
    state: dict[str, Any] = {}

    def on_plan(plan: Any) -> None:
        if not as_json:
            err.print(
                f"study [bold]{plan.study}[/] in {storage}: {plan.total} design points "
                f"({plan.trainings} trainings), {plan.completed} already done, "
                f"{plan.queued} queued now"
                + (f", {plan.stale_failed} stale trials failed" if plan.stale_failed else "")
            )

    with explore_progress(not as_json, workers) as show:

        def on_progress(p: Any) -> None:
            best = max((reward(a, m, mu) for a, m in p.points), default=None)
            state["p"] = p
            show(p, best, mu)

        res = run_explore(
            sp, url=storage, study=study, workers=workers, devices=devs, threads=threads,
            power_w=power_w, data_dir=str(data_dir) if data_dir else None,
            artifacts=artifacts, n_trials=n_trials, on_plan=on_plan, on_progress=on_progress,
            on_note=lambda m: err.print(f"note: {m}", markup=False, highlight=False),
        )  # fmt: skip
    p = res.progress
    if res.stopped is not None:
        again = _explore_command(space, storage, study=study, artifacts=artifacts,
                                 data_dir=data_dir)  # fmt: skip
        raise Interrupted(
            f"{res.stopped_name}: {p.done}/{p.total} design points complete and kept "
            f"(the interrupted ones are retried); resume with: {again}",
            128 + res.stopped,
        )
    out = {
        "study": res.plan.study,
        "storage": storage,
        "artifacts": str(res.artifacts),
        "design_points": p.total,
        "completed": p.done,
        "failed_trials": p.failed,
        "errors": p.errors,
        "seconds": res.seconds,
    }
    if as_json:
        typer.echo(json.dumps(out, indent=2))
    else:
        console_out().print(
            f"{p.done}/{p.total} design points complete in study [bold]{res.plan.study}[/] "
            f"({res.seconds:,.1f} s this run); checkpoints in {res.artifacts}"
        )
        for e in p.errors[:5]:
            err.print(f"failed: {e}", markup=False, highlight=False)
        if p.done < p.total and p.running:
            console_out().print(
                f"{p.running} point(s) are still running in another process; run the same "
                "command again when it ends (or, if none runs, in 20 s) to complete them"
            )
        elif p.done < p.total:
            console_out().print("run the same command again to retry what is missing")
        nxt = shlex.join(["tinysnn", "select", "--storage", storage, "--mu", f"{mu:g}"])
        console_out().print(f"next: {nxt}", markup=False, highlight=False, soft_wrap=True)
    if p.done < p.total and p.failed:
        raise typer.Exit(1)


@contextmanager
def explore_progress(enabled: bool, workers: int = 1) -> Iterator[Any]:
    """done/total, ETA and best reward on a terminal; one line per change otherwise.

    The ETA counts trainings, shared and batched ones included, and says when it is still
    a rough guess (explore.progress.EtaClock)."""

    def eta(p: Any) -> str:
        trained = f"{p.trainings_done}/{p.trainings} trainings, " if p.trainings else ""
        if p.eta_s is None:
            return f"{trained}ETA -"
        s = p.eta_s
        when = f"{s / 3600:.1f} h" if s >= 5400 else f"{s / 60:.0f} min"
        return f"{trained}ETA {'~' + when + ' (rough)' if p.eta_rough else when}"

    if not enabled:
        yield lambda p, best, mu: None
        return
    if not err.is_terminal:
        last: list[int] = [-1]

        def line(p: Any, best: float | None, mu: float) -> None:
            if p.done != last[0]:
                last[0] = p.done
                b = f", best reward {best:.4f} (mu {mu:g})" if best is not None else ""
                err.print(
                    f"{p.done}/{p.total} done, {p.failed} failed, {eta(p)}{b}", highlight=False
                )

        yield line
        return
    cols = (
        TextColumn("[bold]explore"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
    )
    with Progress(*cols, console=err) as prog:
        task = prog.add_task("explore", total=None, info="")

        def cb(p: Any, best: float | None, mu: float) -> None:
            b = f"best R {best:.4f} (mu {mu:g})" if best is not None else ""
            info = f"{eta(p)}  {p.failed} failed  {b}"
            prog.update(task, completed=p.done, total=p.total, info=info)

        yield cb


def _print_points(sp: Any, as_json: bool) -> None:
    rows = [
        {"key": p.key, "training": p.training_key, **p.to_dict()} for p in sp.points
    ]  # fmt: skip
    if as_json:
        typer.echo(json.dumps({"study": sp.study, "points": rows}, indent=2))
        return
    t = Table("#", *(a.title for a in AXES), "trains")
    firsts: set[str] = set()
    groups: dict[tuple[str, ...], int] = {}
    for i, p in enumerate(sp.points):
        shared = p.training_key in firsts
        firsts.add(p.training_key)
        group = tuple(q.key for q in sp.itq_group(p))
        trains = "shared" if shared else "yes"
        if len(group) > 1:
            trains = f"batch {groups.setdefault(group, len(groups) + 1)}"
        cells = (
            a.display(v, p.is_fp32, not p.is_pruned, p.model)
            for a, v in zip(AXES, p.axes.values(), strict=True)
        )
        t.add_row(str(i), *cells, trains)
    console_out().print(t)
    b = sp.budget
    runs = sp.trainings - sum(len(g) - 1 for g in groups)
    batched = f" in {runs} training runs (itq_batch {sp.itq_batch})" if groups else ""
    autos = {q.fp32.key for q in sp.points if q.vmem_floor == "auto"}
    floors = (
        f"; the membrane floor of {len(autos)} network(s) chosen first on the training holdout "
        "(7 short FP32 trainings each)"
        if autos
        else ""
    )
    r = sp.robustness
    robust = floors + (
        f"; every point attacked ({', '.join(r.attacks)} at epsilon "
        f"{', '.join(f'{e:g}' for e in r.epsilons)}; {', '.join(r.threats)}; "
        f"{r.samples} test images)"
        if r is not None
        else ""
    )
    console_out().print(
        f"study [bold]{sp.study}[/]: {len(sp.points)} design points, {sp.trainings} trainings"
        f"{batched}; "
        f"{b.dataset}, train {b.train_samples or 'all'}, test {b.test_samples or 'all'}, "
        f"{b.epochs} epoch(s), seed {b.seed}; sampler {sp.sampler}{robust}. Nothing was run."
    )


@app.command()
def select(
    storage: Storage = "sqlite:///tinysnn.db",
    study: Annotated[str | None, typer.Option("--study", help="Default: the only study.")] = None,
    mu: Mu = 0.5,
    min_accuracy: MinAcc = None,
    max_memory_kb: MaxMem = None,
    max_energy_mj: MaxEnergy = None,
    max_latency_ms: MaxLatency = None,
    min_robust_accuracy: MinRobust = None,
    robust_key: RobustKey = None,
    energy_phase: EnergyPhase = "infer",
    energy_source: EnergySource = "modelled",
    memory_reference: MemRef = "same-topology",
    top: Annotated[int, typer.Option("--top", help="Rows to show.")] = 10,
    artifacts: Artifacts = None,
    export: Annotated[
        Path | None,
        typer.Option(
            "--export",
            help="Write the selected model.pt and record.json here, and (a fixed-point "
            "design) its NIR graph and integer C, as `tinysnn export`.",
        ),
    ] = None,
    export_test_samples: Annotated[
        int, typer.Option(help="With --export: test images written with the C.")
    ] = 1000,
    force: Annotated[
        bool, typer.Option("--force", help="With --export: replace files of the same name.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Rows as JSON, best first.")] = False,
) -> None:
    """Rank completed design points by R = A - mu * M under constraints; show the Pareto set."""
    from tinysnn_dse.explore import default_artifacts, load_records
    from tinysnn_dse.report.select import pareto, rank, reference_text, row

    if top < 1:
        raise ConfigError(f"--top must be at least 1, got {top}")
    cons = constraints(
        min_accuracy, max_memory_kb, max_energy_mj, energy_phase, energy_source, max_latency_ms,
        min_robust_accuracy, robust_key,
    )  # fmt: skip
    name, records = load_records(storage, study)
    rows = rank(records, mu, cons, memory_reference)
    if export is not None:
        if not rows:
            raise ConfigError("no design point meets the constraints; nothing to export")
        _export(rows[0], records, artifacts or default_artifacts(storage), export,
                export_test_samples, force)  # fmt: skip
    if as_json:
        typer.echo(json.dumps(rows[:top], indent=2, default=str))
        return
    if not records:
        raise ConfigError(f"study {name!r} has no completed trials yet; run tinysnn explore")
    console_out().print(
        f"study [bold]{name}[/]: {len(records)} completed, {len(rows)} meet the constraints; "
        f"R = A - {mu:g} * M, {reference_text(memory_reference)}"
    )
    _rows_table(rows[:top], f"top {min(top, len(rows))} by reward", mark_first=True,
                robust_key=cons.robust)  # fmt: skip
    all_rows = [row(r, mu, memory_reference) for r in records]
    front = pareto(all_rows, f"{energy_phase}_energy_{energy_source}_uj_per_sample",
                   cons.robust_key)  # fmt: skip
    robust = f", {cons.robust_key} accuracy" if cons.robust_key else ""
    _rows_table(front, f"Pareto set: accuracy, memory, {energy_source} {energy_phase} energy"
                f"{robust}", robust_key=cons.robust)  # fmt: skip
    if not rows:
        err.print("no design point meets the constraints")
        raise typer.Exit(1)
    if export is not None:
        console_out().print(f"exported {rows[0]['design_key']} to {export}")


def _rows_table(
    rows: list[dict[str, Any]], title: str, mark_first: bool = False, robust_key: str = ""
) -> None:
    """The rows as a table; with a column of the ``robust_key`` adversarial accuracy
    where any row measured it."""
    from tinysnn_dse.report.select import robust_accuracy

    adv = bool(robust_key) and any(not math.isnan(robust_accuracy(r, robust_key)) for r in rows)
    t = Table(
        "trial", "design point", "acc %", *([f"{robust_key} %"] if adv else []), "KiB", "M",
        "reward", "train mJ (model)", "infer uJ/img (model)", title=title,
    )  # fmt: skip
    for i, r in enumerate(rows):
        style = "bold green" if mark_first and i == 0 else None
        ra = robust_accuracy(r, robust_key) if adv else math.nan
        t.add_row(
            str(r["trial"]), r["design_key"], f"{r['accuracy'] * 100:.2f}",
            *([f"{ra * 100:.2f}" if not math.isnan(ra) else ""] if adv else []),
            f"{r['memory_kb']:,.1f}", f"{r['normalized_memory']:.4f}", f"{r['reward']:.4f}",
            f"{r['train_energy_modelled_mj']:.3g}",
            f"{r['infer_energy_modelled_uj_per_sample']:.3g}", style=style,
        )  # fmt: skip
    console_out().print(t)


def _export(
    best: dict[str, Any],
    records: list[Record],
    art: Path,
    dest: Path,
    test_samples: int,
    force: bool = False,
) -> None:
    """The selected point's checkpoint and record into ``dest``; for a fixed-point design
    also its NIR graph and integer C (``tinysnn export``), else a note why not
    (:func:`export.export_selected`)."""
    from tinysnn_dse.explore import artifact_path
    from tinysnn_dse.export import export_selected

    rec = next(r for r in records if r.key == best["design_key"])
    src = artifact_path(art, str(rec.study.get("checkpoint_artifact")))
    with progress_bar(True) as cb:
        res = export_selected(rec, src, dest, test_samples, cb, force)
    if res.result is None:
        err.print(res.note, markup=False, highlight=False, soft_wrap=True)
        return
    _export_summary(res.result)


@app.command()
def report(
    storage: Storage = "sqlite:///tinysnn.db",
    study: Annotated[str | None, typer.Option("--study", help="Default: the only study.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Default: reports/<study>.")] = None,
    mu: Mu = 0.5,
    min_accuracy: MinAcc = None,
    max_memory_kb: MaxMem = None,
    max_energy_mj: MaxEnergy = None,
    max_latency_ms: MaxLatency = None,
    min_robust_accuracy: MinRobust = None,
    robust_key: RobustKey = None,
    energy_phase: EnergyPhase = "infer",
    energy_source: EnergySource = "modelled",
    memory_reference: MemRef = "same-topology",
    hv_reference: Annotated[
        str | None,
        typer.Option(
            "--hv-reference",
            help="Hypervolume reference point ACCURACY,KIB,UJ (default: 0, and 1.1 x the "
            "study's largest memory and modelled inference energy per image).",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace the files of an earlier report in --out.")
    ] = False,
) -> None:
    """Write report.md, index.html, trials.csv and the figures (paper Figs. 6-9, Pareto)."""
    from tinysnn_dse.explore import hypervolume_history, load_records
    from tinysnn_dse.report import build

    cons = constraints(
        min_accuracy, max_memory_kb, max_energy_mj, energy_phase, energy_source, max_latency_ms,
        min_robust_accuracy, robust_key,
    )  # fmt: skip
    name, records = load_records(storage, study)
    ref = _hv_reference(hv_reference, records)
    hv = (ref, hypervolume_history(storage, name, ref)) if records else None
    rep = build(records, out or Path("reports") / name, name, mu, cons, memory_reference,
                hypervolume=hv, force=force)  # fmt: skip
    console_out().print(
        f"report of study [bold]{name}[/] ({len(records)} design points): "
        f"{rep.html.resolve()} (and report.md, trials.csv, {len(rep.figures)} figures)"
    )


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


def _clip(msg: str, limit: int = 600) -> str:
    """One line of bounded length, whatever value a message quotes."""
    msg = " ".join(msg.split())
    return msg if len(msg) <= limit else msg[: limit - 25] + f" ... ({len(msg):,} characters)"


def _explore_command(space: str, storage: str, **opts: Any) -> str:
    """The command line that resumes a run, shell-quoted."""
    args = ["tinysnn", "explore", space, "--storage", storage]
    for k, v in opts.items():
        if v is not None:
            args += [f"--{k.replace('_', '-')}", str(v)]
    return shlex.join(args)


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point: one-line errors, exit code 2 for user errors."""
    from typer.exceptions import Exit, TyperException

    cmd = typer.main.get_command(app)
    try:
        rv = cmd.main(
            args=list(argv) if argv is not None else sys.argv[1:],
            prog_name="tinysnn",
            standalone_mode=False,
        )
    except TinySNNError as e:
        err.print(f"error: {_clip(str(e))}", markup=False, highlight=False, soft_wrap=True)
        raise SystemExit(e.exit_code) from None
    except TyperException as e:  # usage errors: unknown option, bad type, missing argument
        msg = e.format_message() if hasattr(e, "format_message") else str(e)
        msg = _clip(" ".join(str(msg).split()))
        err.print(f"error: {msg}", markup=False, highlight=False, soft_wrap=True)
        raise SystemExit(getattr(e, "exit_code", 2) or 2) from None
    except (Exit, KeyboardInterrupt) as e:
        # Typer turns Ctrl-C (and our SIGTERM / SIGHUP handling, a KeyboardInterrupt) into
        # Exit(130) before this function sees it
        ki = e if isinstance(e, KeyboardInterrupt) else e.__cause__ or e.__context__
        if isinstance(e, KeyboardInterrupt) or isinstance(ki, KeyboardInterrupt):
            code = getattr(ki, "exit_code", 130)
            err.print(
                f"error: {ki or 'interrupted'}; stopped before anything was half-written",
                markup=False, highlight=False, soft_wrap=True,
            )  # fmt: skip
            raise SystemExit(code) from None
        raise SystemExit(e.exit_code) from None
    raise SystemExit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":
    main()
