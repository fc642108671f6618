"""The export folder's README: ``templates/readme.md`` (package data) filled from named
values (:func:`readme_values`): the files, the formats, how to build and run, the memory
map against Eq. 4. The template holds the text; this module only the numbers and the
parts that depend on the topology."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

from tinysnn_dse import __version__
from tinysnn_dse.core import integer
from tinysnn_dse.core.params import ModelConfig
from tinysnn_dse.core.quant import FixedPoint
from tinysnn_dse.export import c as c_mod
from tinysnn_dse.export import ram as ram_mod
from tinysnn_dse.records import Record

TEMPLATE = "templates/readme.md"


@dataclass(frozen=True)
class Ram:
    """What the README says of RAM: the library's state arrays (:mod:`export.ram`), the
    bytes of the test presentations' inputs (largest, mean) and the host harness's
    buffers."""

    arrays: tuple[ram_mod.RamArray, ...]
    buffer_max: int
    buffer_mean: float
    host_bytes: int

    @property
    def state_bytes(self) -> int:
        return sum(a.bytes for a in self.arrays)


def readme(
    rec: Record, d: integer.IntDesign, cm: c_mod.CModel, model: ModelConfig, acc: float,
    n_img: int, ram: Ram,
) -> str:  # fmt: skip
    """The README of an export of ``rec``'s design (integer design ``d``, C model ``cm``)
    whose ``expected.txt`` has accuracy ``acc`` on ``n_img`` test images."""
    text = resources.files("tinysnn_dse.export").joinpath(TEMPLATE).read_text(encoding="utf-8")
    return text.format_map(readme_values(rec, d, cm, model, acc, n_img, ram))


#: how a Norse user runs ``model.norse.nir`` (tinySNN's graph); tests run this block
NORSE_SNIPPET = """```python
import nir, nirtorch, torch
from norse.torch.utils.import_nir import _import_norse_module

g = nir.read("model.norse.nir")
node = lambda n: _import_norse_module(n, dt=g.metadata["dt_s"], ignore_warnings=True)
net = nirtorch.nir_to_torch(g, {nir.Linear: node, nir.LIF: node})
state, counts = None, 0
for x in spikes:  # [steps, batch, inputs]: each step's input spikes (0/1)
    z, state = net(x.float(), state)
    counts = counts + z  # [batch, neurons]: the excitatory spike counts
```"""

CONSUMERS = {
    "lateral": (
        "What each NIR consumer does with `model.nir` (the versions current in 2026-12; "
        "issue 26 tried each):\n\n"
        "| consumer | runs it as written? | what to do |\n"
        "| --- | --- | --- |\n"
        "| Norse 1.1.0 | no: it ignores `r` and `v_reset` (it warns) and fires on `>`; its "
        "`from_nir` executor (`nirtorch.load`) returns the lateral Linear's output in place "
        "of the Output node's on a recurrent graph | run `model.norse.nir` (the same network "
        "with `r` folded into the Linear weights, the voltage origin at `v_reset`, thresholds "
        "1e-4 mV lower) in `nirtorch.nir_to_torch` with Norse's node import: the block below "
        "(the tests run it) |\n"
        "| snnTorch 1.0.0 | no: it refuses per-neuron thresholds | none: tinySNN's "
        "thresholds adapt per neuron; one threshold would be another network |\n"
        "| sinabs 3.1.3 | no: it has no `nir.Linear` import | none |\n"
        "| rockpool 3.1.0 | no: its import fails on any `nir.LIF` | none |\n"
        "| spyx 1.0.0 | yes, given `dt` (98.6 % of predictions agreed, issue 26; not checked "
        'by the tests: JAX is not installed in CI) | pass `dt` = `metadata["dt_s"]` |\n\n'
        + NORSE_SNIPPET
        + "\n\nThen `readout_rule` of the metadata turns `counts` into classes."
    ),
    "inhibitory": (
        "Norse 1.1.0 imports neither `nir.Delay` nor this graph's `nir.IF` reset and resting "
        "level, and its `from_nir` executor mishandles the recurrent loop; "
        '`tinysnn_dse.export.nir_check.norse_module(nir.read("model.nir"))` runs the graph '
        "with Norse's Linear and LIF import and a one-step delay and IF cell of its own. "
        "spyx 1.0.0 runs the graph but silently drops the inhibitory loop (issue 26): do not "
        "use it for this design. snnTorch (per-neuron thresholds, Delay), sinabs (no "
        "`nir.Linear`) and rockpool (`nir.LIF`) cannot load it."
    ),
}

#: what the README says of the input encoder, by ``EncodingParams.encoder``
ENCODER_TEXT = {
    "geometric": (
        "This design's input spikes come from the simulator's geometric encoder (float "
        "logarithms of counter-based uniforms), which the C does not reproduce; a design "
        "trained with `-p encoder=counter` exports the encoder itself (`tsnn_encode`)."
    ),
    "counter": (
        "The encoder is in the C (`encoder: counter`): `tsnn_infer_pixels(pixels, "
        "image_key, round_keys, counts)` draws each step's input spikes from the pixel "
        "codes (0..255) and the image's 64-bit key with `tsnn_encode` and runs the "
        "simulator's re-presentations, so firmware needs only the pixels and a key. Input i "
        "spikes at step t of presentation b where the top 24 bits of "
        "`tsnn_hash(tsnn_hash(image_key, 2^32 + b, 0), t, i)` are below "
        "`tsnn_enc_thr[b][pixel]` = floor(pixel / 255 x min(1, ({rate} + {boost} b) Hz x dt) "
        "x 2^24) "
        "(b = 0 .. {max_boosts}; the table is in `model_data.h`, in flash). The simulator "
        "gives test image i the key `tsnn_hash(ukey, 0, i)` for a `ukey` drawn from its "
        "evaluation generator; `test_pixels.bin` stores every image's key, and "
        "`./tinysnn test_pixels.bin` prints `expected.txt`'s labels from the pixels alone."
    ),
}


def readme_values(
    rec: Record, d: integer.IntDesign, cm: c_mod.CModel, model: ModelConfig, acc: float,
    n_img: int, ram: Ram,
) -> dict[str, str]:  # fmt: skip
    """The template's values, each as the README writes it."""
    enc = model.encoding
    inhibitory = model.topology == "inhibitory"
    param_bits = sum(a.elements * a.bits for a in cm.arrays)
    vm_bits = cm.vmem_neurons * d.vmem.bits
    total_bits = param_bits + vm_bits
    total_bytes = cm.parameter_bytes + cm.vmem_bytes
    eq4 = rec.memory.bits
    return {
        "key": f"{rec.key}",
        "version": __version__,
        "model": f"{model.model}",
        "n_in": str(model.n_in),
        "n_exc": str(model.n_exc),
        "inhibition": "with an inhibitory layer" if inhibitory else "direct lateral inhibition",
        "rounding": f"{d.rounding}",
        "steps": str(enc.steps),
        "steps_minus_1": str(enc.steps - 1),
        "step_buffer": f"{2 * model.n_in:,}",
        "dt_ms": f"{enc.dt_ms:g}",
        "readout": f"{model.readout}",
        "n_img": f"{n_img:,}",
        "test_samples": str(n_img),
        "accuracy_expected": f"{acc * 100:.2f}",
        "accuracy_record": f"{rec.outcome.accuracy * 100:.2f}",
        "format_rows": "\n".join(
            (
                _format_row("weights", d.weight, "`tsnn_w`"),
                _format_row("Vmem", d.vmem, "`tsnn_vmem_t v[]`"),
                _format_row("Vth", d.vth, "`tsnn_vth`" + (", `tsnn_vth_inh`" * inhibitory)),
            )
        ),
        "decay": str(d.exc.decay),
        "inh_decay": f" (inhibitory {d.inh.decay} / 2^16)" if inhibitory else "",
        "acc_frac": str(d.acc_frac),
        "round_bits": str(d.k),
        "rest": str(d.exc.rest),
        "reset": str(d.exc.reset),
        "ref_steps": str(d.exc.ref_steps),
        "w_rec": str(d.w_rec),
        "inh_constants": (
            f", exc -> inh {d.w_exc_inh}, inhibitory threshold {d.inh_thr} (Vth code)"
            if inhibitory
            else ""
        ),
        "consumers": CONSUMERS["inhibitory" if inhibitory else "lateral"],
        "norse_file_row": (
            ""
            if inhibitory
            else "| `model.norse.nir` | the same network as Norse's NIR node "
            'import reads it (below, "In a simulator") |\n'
        ),
        "pixel_file_row": (
            "| `c/test_pixels.bin` | the same images as pixel codes and keys, for the encoder on "
            "the chip (`./tinysnn test_pixels.bin`: the spikes drawn by `tsnn_encode`) |\n"
            if enc.encoder == "counter"
            else ""
        ),
        "encoder_text": ENCODER_TEXT[enc.encoder].format(
            rate=f"{enc.max_rate_hz:g}",
            boost=f"{enc.rate_boost_hz:g}",
            max_boosts=int(enc.max_boosts),
        ),
        "rate_boost_hz": f"{enc.rate_boost_hz:g}",
        "min_spikes": str(enc.min_spikes),
        "max_boosts": str(enc.max_boosts),
        "memory_rows": "\n".join(_memory_rows(d, cm, inhibitory)),
        "total_bits": f"{total_bits:,}",
        "total_bytes": f"{total_bytes:,}",
        "eq4_bits": f"{eq4:,}",
        "eq4_bytes": f"{eq4 / 8:,.1f}",
        "memory_format": f"{rec.memory.detail.get('memory_format', 'dense')}",
        "differences": "\n".join(_differences(d, cm, model, total_bytes * 8 - total_bits)),
        "readout_names": ", ".join(f"`{a.name}`" for a in cm.readout),
        "readout_bits": f"{sum(a.elements * a.bits for a in cm.readout):,}",
        "ram_rows": "\n".join(ram_mod.rows(ram.arrays)),
        "ram_bytes": f"{ram.state_bytes:,}",
        "buffer_max": f"{ram.buffer_max:,}",
        "buffer_mean": f"{ram.buffer_mean:,.0f}",
        "host_bytes": f"{ram.host_bytes:,}",
    }


def _format_row(name: str, f: object, held_in: str) -> str:
    """A row of the formats table: bits, Qi.f, step and range, where the C holds it."""
    assert isinstance(f, FixedPoint)
    sign = "signed" if f.signed else "unsigned"
    q = f"{'s' if f.signed else 'u'}Q{f.int_bits}.{f.frac_bits}"
    rng = f"step 2^{-f.frac_bits} = {f.eps:g}, range [{f.lo:g}, {f.hi:g}]"
    return f"| {name} | {f.bits} | {q} | {sign}, {rng} | {held_in} |"


def _memory_rows(d: integer.IntDesign, cm: c_mod.CModel, inhibitory: bool) -> list[str]:
    """The memory map: each parameter array of the C, then the Vmem state in RAM."""
    rows = [f"| `{a.name}` | {a.what} | {a.elements:,} x {a.bits} | {a.elements * a.bits:,} | "
            f"{a.bytes:,} |" for a in cm.arrays]  # fmt: skip
    rows.append(f"| `v`{', `vi`' if inhibitory else ''} (RAM) | Vmem state | "
                f"{cm.vmem_neurons:,} x {d.vmem.bits} (held in int{cm.vmem_ctype_bits}_t) | "
                f"{cm.vmem_neurons * d.vmem.bits:,} | {cm.vmem_bytes:,} |")  # fmt: skip
    return rows


def _differences(d: integer.IntDesign, cm: c_mod.CModel, model: ModelConfig, pad: int) -> list[str]:
    """Why the export's bits differ from Eq. 4's: packing, and the baseline's inhibitory
    matrices that the C holds as two constants."""
    out = [
        f"- Packing padding: {pad:,} bits ({pad // 8:,} bytes): each packed array is rounded "
        f"up to whole bytes, and each {d.vmem.bits}-bit potential is held in a "
        f"{cm.vmem_ctype_bits}-bit C integer.",
    ]
    if model.topology == "inhibitory":
        inh_mat = 2 * model.n_exc * model.n_exc * d.weight.bits
        out.append(
            f"- Eq. 4 counts the baseline's two inhibitory matrices (exc -> inh one to one, "
            f"inh -> exc all but self) as stored {model.n_exc} x {model.n_exc} matrices at "
            f"the weight precision ({inh_mat:,} bits), as BindsNET stores them. Their entries "
            f"are two constants (`TSNN_WEI`, `TSNN_WREC`, on the Vmem grid; they do not fit "
            f"the weight format), so the export holds 2 constants instead."
        )
    return out
