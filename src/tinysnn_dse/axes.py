"""The design axes, defined once (docs/architecture.md, "Design axes"): one row an axis, so
that a new axis or value is one edit, not one per layer.

:data:`AXES` is the one table of what a design point varies. Everything that lists axes
derives from it: the search-space YAML's keys, parsing and errors
(``explore/space.py``), the CLI's option checks, :class:`~tinysnn_dse.records.DesignPoint`
(its fields, JSON and design key), the Optuna distributions of a study
(``explore/study.py``), the dry run's columns (``cli.py``), the report's CSV columns and
grouping (``report/``). Standard library only, so every layer may use it.

Three kinds of axis:

- ``choice``: a name from a fixed vocabulary (``choices``). The vocabulary, not a space's
  subset of it, is what a study's categorical distributions use, so a space may add a
  value the vocabulary knows and the study still resumes.
- ``count``: a positive integer (network size); searched on a log scale.
- ``bits``: a word length :data:`MIN_BITS`-:data:`MAX_BITS`, or ``None`` for FP32; ordered,
  FP32 above 32 bits (:meth:`Axis.ordinal`), so that a sampler can learn that fewer bits
  cost less memory.
- ``fraction``: a number in [0, 1) (the share of synapses pruned).

``quant`` axes only mean something for a quantized point: an FP32 point has one identity
whatever scheme or rounding is named beside it. ``pruned`` axes only mean something for a
pruned point (``prune`` > 0): an unpruned point names no pruning method.

Design keys stay stable: the paper's axes make ``model-nN-fp32`` or
``model-nN-scheme-rounding-wW-vV-tT`` (and ``-p<hash>`` for parameter overrides). An axis
added after the paper's adds a key fragment only where a point leaves its default, so every
existing point (and every study that stored it) keeps its key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from tinysnn_dse.core.modes import RoundMode
from tinysnn_dse.errors import ConfigError

ModelName = Literal["baseline", "sl-stdp", "tinysnn", "diet"]
Scheme = Literal["ptq", "itq"]
Leak = Literal["lif", "if"]
PruneMethod = Literal["stdp", "magnitude"]
Encoding = Literal["direct", "poisson"]
Trainable = Literal["none", "leak", "threshold", "both"]
Schedule = Literal["direct", "iir"]
Init = Literal["random", "ann"]

MODELS: tuple[str, ...] = get_args(ModelName)
SCHEMES: tuple[str, ...] = get_args(Scheme)
#: the roundings, as core/modes.py declares them (each with its rule there)
ROUNDINGS: tuple[str, ...] = tuple(m.value for m in RoundMode)
LEAKS: tuple[str, ...] = get_args(Leak)
PRUNE_METHODS: tuple[str, ...] = get_args(PruneMethod)
ENCODINGS: tuple[str, ...] = get_args(Encoding)
TRAINABLES: tuple[str, ...] = get_args(Trainable)
SCHEDULES: tuple[str, ...] = get_args(Schedule)
INITS: tuple[str, ...] = get_args(Init)
#: the model families (docs/model.md): the STDP family (method.md sections 2-4b), trained
#: without labels and read out by assigned labels, and the gradient-trained family (4c)
FAMILIES: dict[str, tuple[str, ...]] = {
    "stdp": ("baseline", "sl-stdp", "tinysnn"),
    "diet": ("diet",),
}
FAMILY_OF: dict[str, str] = {m: f for f, ms in FAMILIES.items() for m in ms}
MIN_BITS, MAX_BITS = 2, 32
#: how a bits value says "no quantization" (case-insensitive)
FP32_WORDS = ("fp32", "float", "float32", "none")
#: :meth:`Axis.ordinal` of FP32 on a bits axis: above every fixed-point width
FP32_ORDINAL = MAX_BITS + 1

Kind = Literal["choice", "count", "bits", "fraction"]


@dataclass(frozen=True)
class Axis:
    """One design axis: its name (YAML key, ``DesignPoint`` field, record and CSV column),
    kind, default, column title and, for ``choice``, the vocabulary."""

    name: str
    kind: Kind
    default: Any
    title: str
    doc: str
    choices: tuple[str, ...] = ()
    quant: bool = False  # meaningless for an FP32 point
    minimum: int = 1  # count axes
    maximum: int = 0  # count axes: 0 for none
    fp32_label: str = "-"  # a quant choice axis's cell for an FP32 point
    #: the model parameter (``tinysnn params``) the axis sets, if it is one; the paper's
    #: axes are not (they choose the preset, its size and the quantization)
    param: str = ""
    #: design-key fragment of an axis added after the paper's: ``-<tag><value>``, written
    #: only where a point leaves the axis's default (the paper's axes make the base key)
    tag: str = ""
    #: applies at inference only: points that differ only here share one training
    infer_only: bool = False
    #: meaningless for an unpruned point (``prune`` 0)
    pruned: bool = False
    #: the model families (:data:`FAMILIES`) it means something for; () for every one.
    #: A point of another family holds the default (:func:`check_family`)
    families: tuple[str, ...] = ()
    #: words a ``count`` axis takes beside integers (``vmem_floor: auto``), resolved
    #: before a study runs, so that no sampler sees them
    words: tuple[str, ...] = ()

    def applies_to(self, model: str) -> bool:
        return not self.families or FAMILY_OF.get(model, "") in self.families

    @property
    def log(self) -> bool:
        """A ``count`` axis is searched and compared on a log scale unless 0 is allowed."""
        return self.kind == "count" and self.minimum >= 1

    def parse(self, v: Any, where: str) -> Any:
        """A YAML or CLI value checked against the axis; a one-line ``ConfigError`` naming
        ``where`` (``file: key`` or ``--option``) and what is allowed otherwise."""
        if self.kind == "choice":
            if not isinstance(v, str) or v not in self.choices:
                raise ConfigError(
                    f"{where}: unknown value {short_repr(v)}; allowed: {', '.join(self.choices)}"
                )
            return v
        if self.kind == "count":
            if isinstance(v, str) and v.strip().lower() in self.words:
                return v.strip().lower()
            hi = self.maximum or None
            if isinstance(v, bool) or not isinstance(v, int) or v < self.minimum \
                    or (hi is not None and v > hi):  # fmt: skip
                allowed = f">= {self.minimum}" if hi is None else f"in {self.minimum}..{hi}"
                words = "".join(f" or {w}" for w in self.words)
                raise ConfigError(
                    f"{where}: {short_repr(v)} is not allowed; expected an integer {allowed}{words}"
                )
            return v
        if self.kind == "fraction":
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 1:
                raise ConfigError(
                    f"{where}: {short_repr(v)} is not allowed; expected a fraction in [0, 1)"
                )
            return float(v)
        if v is None or isinstance(v, str) and v.strip().lower() in FP32_WORDS:
            return None
        if isinstance(v, str):
            try:
                v = int(v.strip())
            except ValueError:
                raise ConfigError(
                    f"{where}: {short_repr(v)} is not a width; "
                    f"use fp32 or an integer {MIN_BITS}-{MAX_BITS}"
                ) from None
        if isinstance(v, bool) or not isinstance(v, int) or not MIN_BITS <= v <= MAX_BITS:
            raise ConfigError(
                f"{where}: {short_repr(v)} is an impossible width; "
                f"use fp32 or {MIN_BITS}-{MAX_BITS}"
            )
        return v

    def from_json(self, v: Any) -> Any:
        """A stored value back (records of every schema version)."""
        if self.kind == "bits":
            return None if v in (None, "fp32") else int(v)
        if self.kind == "count":
            return v if v in self.words else int(v)
        if self.kind == "fraction":
            return float(v)
        return str(v)

    def label(self, v: Any) -> str:
        """The value as a table cell."""
        if self.kind == "fraction":
            return f"{float(v):g}"
        return "fp32" if self.kind == "bits" and v is None else str(v)

    def display(self, v: Any, fp32_point: bool, unpruned: bool = False,
                model: str | None = None) -> str:  # fmt: skip
        """The cell of a point's value in tables and in a grid study's trial parameters
        (an FP32 point names no scheme or rounding, an unpruned one no pruning method, a
        point of ``model`` no axis of another family)."""
        if model is not None and not self.applies_to(model):
            return "-"
        if fp32_point and self.quant and self.kind == "choice":
            return self.fp32_label
        if unpruned and self.pruned:
            return self.fp32_label
        return self.label(v)

    def display_choices(self) -> tuple[str, ...]:
        """Every cell :meth:`display` can give a ``choice`` or ``bits`` axis, fixed by the
        code (a grid study's categorical distributions)."""
        if self.kind == "bits":
            return ("fp32", *(str(b) for b in range(MIN_BITS, MAX_BITS + 1)))
        return ((self.fp32_label,) if self.quant or self.pruned else ()) + self.choices

    def ordinal(self, v: Any) -> int | str:
        """The value as a sampler sees it: bits as an integer with FP32 above 32."""
        if self.kind == "bits":
            return FP32_ORDINAL if v is None else int(v)
        return v  # type: ignore[no-any-return]


AXES: tuple[Axis, ...] = (
    Axis("model", "choice", None, "model", "network and learning rule", choices=MODELS),
    Axis("neurons", "count", 100, "neurons", "excitatory neurons"),
    Axis(
        "scheme",
        "choice",
        "ptq",
        "scheme",
        "PTQ or ITQ",
        choices=SCHEMES,
        quant=True,
        fp32_label="fp32",
    ),  # fmt: skip
    Axis(
        "rounding",
        "choice",
        "nearest",
        "rounding",
        "rounding of every quantizer",
        choices=ROUNDINGS,
        quant=True,
    ),  # fmt: skip
    Axis("weight_bits", "bits", None, "W", "weight word length", quant=True),
    Axis("vmem_bits", "bits", None, "Vmem", "membrane-potential word length", quant=True),
    Axis("vth_bits", "bits", None, "Vth", "threshold word length", quant=True),
    # axes beyond the paper's, each a model parameter, in the key only off its default (so
    # the paper's points keep their keys)
    Axis(
        "t_present_ms",
        "count",
        250,
        "T ms",
        "presentation time per sample, ms (training and inference)",
        param="t_present_ms",
        tag="t",
        families=("stdp",),
    ),  # fmt: skip
    Axis(
        "leak",
        "choice",
        "lif",
        "leak",
        "lif, or if: integrate-and-fire (no leak)",
        choices=LEAKS,
        param="leak",
        tag="leak-",
    ),  # fmt: skip
    Axis(
        "t_present_infer_ms",
        "count",
        0,
        "T inf ms",
        "presentation time at inference, ms (0: as in training)",
        minimum=0,
        param="t_infer_ms",
        tag="ti",
        infer_only=True,
        families=("stdp",),
    ),  # fmt: skip
    Axis(
        "vmem_floor",
        "count",
        0,
        "floor mV",
        "how far below rest an excitatory potential may fall, mV (0: no floor; auto: "
        "chosen on the training holdout)",
        minimum=0,
        param="vmem_floor_mv",
        tag="floor",
        families=("stdp",),
        words=("auto",),
    ),  # fmt: skip
    Axis(
        "prune",
        "fraction",
        0.0,
        "prune",
        "fraction of each excitatory neuron's input synapses removed",
        param="prune",
        tag="prune",
        families=("stdp",),
    ),  # fmt: skip
    Axis(
        "prune_method",
        "choice",
        "stdp",
        "pruning",
        "stdp (during training, Rathi 2019) or magnitude (once, after training)",
        choices=PRUNE_METHODS,
        param="prune_method",
        tag="pm-",
        pruned=True,
        families=("stdp",),
    ),  # fmt: skip
    # the gradient-trained family's axes (method.md 4c, docs/model.md)
    Axis(
        "depth",
        "count",
        1,
        "depth",
        "hidden layers of `neurons` each",
        maximum=2,
        param="depth",
        tag="d",
        families=("diet",),
    ),  # fmt: skip
    Axis(
        "timesteps",
        "count",
        4,
        "T",
        "steps per image (latency = T x dt)",
        maximum=256,
        param="timesteps",
        tag="T",
        families=("diet",),
    ),  # fmt: skip
    Axis(
        "encoding",
        "choice",
        "direct",
        "input",
        "direct (the input itself every step: a pixel's intensity as current, or an event "
        "data set's frame of the step) or poisson (rate-coded spikes of an image)",
        choices=ENCODINGS,
        param="encoding",
        tag="enc-",
        families=("diet",),
    ),  # fmt: skip
    Axis(
        "trainable",
        "choice",
        "both",
        "learned",
        "which per-layer neuron parameters learn: none, leak, threshold or both",
        choices=TRAINABLES,
        param="trainable",
        tag="tr-",
        families=("diet",),
    ),  # fmt: skip
    Axis(
        "schedule",
        "choice",
        "direct",
        "schedule",
        "direct (trained at its timesteps) or iir (from 5 steps down, a stage a step)",
        choices=SCHEDULES,
        param="schedule",
        tag="sch-",
        families=("diet",),
    ),  # fmt: skip
    Axis(
        "init",
        "choice",
        "random",
        "init",
        "random (the seed's weights) or ann (converted from a trained ANN, then trained)",
        choices=INITS,
        param="init",
        tag="init-",
        families=("diet",),
    ),  # fmt: skip
)
BY_NAME: dict[str, Axis] = {a.name: a for a in AXES}
NAMES: tuple[str, ...] = tuple(a.name for a in AXES)
#: the word-length axes (a point with all of them FP32 is an FP32 point)
BITS: tuple[str, ...] = tuple(a.name for a in AXES if a.kind == "bits")
#: YAML shorthands: one key that sets several axes to the same values (one axis, not a
#: product of two)
ALIASES: dict[str, tuple[str, ...]] = {
    "neuron_bits": ("vmem_bits", "vth_bits"),
    # the training presentation time by its own name, so that a space can say both times
    # symmetrically beside t_present_infer_ms
    "t_present_train_ms": ("t_present_ms",),
}


def family_of(model: str) -> str:
    """The family of a model name of :data:`MODELS`."""
    return FAMILY_OF[model]


def check_family(values: Mapping[str, Any], where: str) -> None:
    """A one-line ConfigError where ``values`` (a point's axes) sets an axis that means
    nothing for its model's family (one left at its default is fine: every point holds
    every axis)."""
    model = values["model"]
    for a in AXES:
        if not a.applies_to(model) and a.name in values and values[a.name] != a.default:
            raise ConfigError(
                f"{where}: {a.name} means nothing for model {model} (an axis of the "
                f"{' and '.join(a.families)} family); leave it out of {model}'s designs"
            )


def is_fp32(values: Mapping[str, Any]) -> bool:
    return all(values.get(b) is None for b in BITS)


def is_unpruned(values: Mapping[str, Any]) -> bool:
    return not values.get("prune")


def distance(suggested: Mapping[str, Any], point: Mapping[str, Any],
             spans: Mapping[str, float]) -> float:  # fmt: skip
    """How far a point is from a sampler's suggestion (in :meth:`Axis.ordinal` terms):
    1 per differing ``choice`` axis (none for a ``quant`` axis when the point is FP32),
    and for ordered axes the difference over the space's span of that axis (log2 for
    ``count``). :func:`nearest` takes the closest point of a space."""
    fp32, unpruned = is_fp32(point), is_unpruned(point)
    d = 0.0
    for a in AXES:
        s, p = suggested[a.name], a.ordinal(point[a.name])
        if a.kind == "choice":
            d += 0.0 if (fp32 and a.quant) or (unpruned and a.pruned) or s == p else 1.0
        elif a.log:
            d += abs(math.log2(float(s)) - math.log2(float(p))) / spans.get(a.name, 1.0)
        else:
            d += abs(float(s) - float(p)) / spans.get(a.name, 1.0)
    return d


def nearest(suggested: Mapping[str, Any], points: Sequence[Mapping[str, Any]]) -> int:
    """Index of the point of ``points`` (axis values) closest to ``suggested``; ties go to
    the earlier point. The space is a union of grids, so a suggestion per axis need not be
    one of its points; the sampler learns the value of the point it is mapped to."""
    spans = {}
    for a in AXES:
        if a.kind == "choice":
            continue
        vals = [float(a.ordinal(p[a.name])) for p in points]
        if a.log:
            vals = [math.log2(v) for v in vals]
        spans[a.name] = max(max(vals) - min(vals), 1.0 if a.kind != "fraction" else 0.1)
    return min(range(len(points)), key=lambda i: (distance(suggested, points[i], spans), i))


def short_repr(v: Any, limit: int = 80) -> str:
    """``repr(v)`` cut to ``limit`` characters, so that a hostile value is a short line."""
    import reprlib

    r = reprlib.Repr()
    r.maxstring = r.maxother = r.maxlong = limit
    r.maxlist = r.maxdict = 6
    text = r.repr(v)
    return text if len(text) <= limit else text[: limit - 3] + "..."
