"""Exporting one fixed-point design of the gradient-trained family into a folder, as
:mod:`export.design` exports the STDP family's: re-test its checkpoint exactly as
``tinysnn evaluate`` does (the integer datapath, the same keys), capture the first
``test_samples`` test images' pixel codes and keys, and write

- ``c/``: bit-exact integer C (:mod:`export.diet_c`; no float, no malloc);
- ``test_pixels.bin``: the images for ``c/diet_main.c``;
- ``expected.txt``: per image the simulator's class and output membrane codes, which the
  compiled C prints for the same file;
- ``model.nir``: the network as a NIR graph (:mod:`export.diet_nir`);
- ``evaluation.json`` (the record of the re-test) and ``README.md``.

Everything is staged beside ``out_dir`` and moved in at the end (:func:`files.staging`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tinysnn_dse import __version__
from tinysnn_dse.core import diet, diet_integer
from tinysnn_dse.core.params import QuantSpec
from tinysnn_dse.errors import ConfigError
from tinysnn_dse.export import ram as ram_mod
from tinysnn_dse.files import check_clobber, move_in, staging
from tinysnn_dse.runner import Progress, Trained, evaluate_checkpoint, no_progress

#: what a diet export writes at the top of its folder
EXPORT_NAMES = ("model.nir", "c", "test_pixels.bin", "expected.txt", "evaluation.json",
                "README.md")  # fmt: skip


def export_diet(
    trained: Trained,
    quant: QuantSpec | None,
    out_dir: Path,
    data_dir: str | None,
    test_samples: int,
    progress: Progress = no_progress,
    title: str | None = None,
    force: bool = False,
    extra: Mapping[str, bytes | str] | None = None,
    refuse_non_empty: bool = True,
) -> Any:
    """:func:`export.design.export_design` for the gradient-trained family (checks done
    there: the family, the formats, the sample count, the folder)."""
    from tinysnn_dse.export import diet_c, diet_nir
    from tinysnn_dse.export.design import ExportError, ExportResult

    names = None if refuse_non_empty else [*EXPORT_NAMES, *(extra or {})]
    check_clobber(out_dir, names, force, "the export")
    px: list[torch.Tensor] = []
    ks: list[torch.Tensor] = []

    def cap(p: torch.Tensor, k: torch.Tensor) -> None:
        px.append(p)
        ks.append(k)

    try:
        ev = evaluate_checkpoint(trained, quant, data_dir, test_samples, "cpu", progress,
                                 capture=cap, at_most=True)  # type: ignore[arg-type]  # fmt: skip
    except ConfigError as e:  # a design without an integer datapath (an accumulator bound)
        if "fully fixed-point" not in str(e):
            raise
        raise ExportError(f"the integer C export cannot express this design: {e}") from None
    tested = ev.integer
    if tested is None:
        raise ExportError("the integer C export cannot express this design")
    d = tested.design
    pixels = torch.cat(px) if px else torch.zeros(0, d.layers[0].w.shape[0], dtype=torch.int64)
    keys = torch.cat(ks) if ks else torch.zeros(0, dtype=torch.int64)
    out, _ = diet_integer.infer(d, pixels, keys)
    pred = out.argmax(dim=1)
    assert ev.test_labels is not None
    labels = ev.test_labels.numpy()
    rec = ev.record
    title = title or rec.key
    n = int(pixels.shape[0])
    with staging(out_dir, f"the export to {out_dir}", f".{out_dir.name}.export-") as tmp:
        files, arrays = diet_c.write(d, tmp / "c", title)
        written = [str(p.relative_to(tmp)) for p in files]
        inputs = pixels  # an event design's: its TSNN_T frames a sample, step-major
        if d.encoding == diet.Encoding.EVENTS:
            inputs = diet.frames_at(pixels, d.timesteps).reshape(n, -1)
        (tmp / "test_pixels.bin").write_bytes(
            diet_c.pixel_file(inputs.numpy().astype(np.uint8), labels, keys.numpy())
        )
        lines = [" ".join([str(int(c)), *(str(int(v)) for v in row)])
                 for c, row in zip(pred.tolist(), out.tolist(), strict=True)]  # fmt: skip
        (tmp / "expected.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
        meta = {
            "tinysnn": __version__,
            "design": title,
            "rounding": d.rounding.value,
            "formats": dict(rec.formats),
            "timesteps": d.timesteps,
            "encoding": d.encoding.value,
            "datapath": "integer (core/diet_integer.py); NIR holds its real values",
        }
        diet_nir.write(diet_nir.build(trained.model, d, tested.formats, meta), tmp / "model.nir")
        (tmp / "evaluation.json").write_text(
            json.dumps(rec.to_dict(), indent=2, sort_keys=True) + "\n"
        )
        params = sum(a.bytes for a in arrays)
        headers = ("diet.h", "model.h", "tsnn_common.h")
        arrays_ram = ram_mod.of_export(tmp / "c", "diet.c", headers)
        state = sum(a.bytes for a in arrays_ram)
        host = sum(a.bytes for a in ram_mod.of_export(tmp / "c", "diet_main.c", headers))
        (tmp / "README.md").write_text(
            _readme(title, d, n, params, arrays_ram, host, rec.memory.bits)
        )
        written += ["test_pixels.bin", "expected.txt", "model.nir", "evaluation.json",
                    "README.md"]  # fmt: skip
        for name, data in (extra or {}).items():
            raw = data.encode() if isinstance(data, str) else data
            (tmp / name).write_bytes(raw)
        written = [*extra, *written] if extra else written
        move_in(tmp, out_dir)
    acc = float((pred.numpy() == labels[:n]).mean()) if n else 0.0
    return ExportResult(out_dir=out_dir, files=written, test_samples=n, accuracy=acc,
                        parameter_bytes=params + state, eq4_bytes=rec.memory.bits / 8,
                        evaluation=ev)  # fmt: skip


def _readme(title: str, d: diet_integer.IntDiet, n: int, params: int,
            arrays_ram: list[ram_mod.RamArray], host: int, eq4_bits: int) -> str:  # fmt: skip
    sizes = [d.layers[0].w.shape[0], *(layer.w.shape[1] for layer in d.layers)]
    state = sum(a.bytes for a in arrays_ram)
    ram_rows = "\n".join(ram_mod.rows(arrays_ram))
    return f"""# {title}

A fixed-point design of tinysnn's gradient-trained family (docs/model.md, "The
gradient-trained family"): {"-".join(str(s) for s in sizes)}, {d.timesteps} steps,
{d.encoding.value} input, {d.rounding.value} rounding, exported by tinysnn {__version__}.

    cd c && cc -std=c99 -O2 -Wall -Wextra -Werror -o tinysnn diet.c diet_main.c
    ./tinysnn ../test_pixels.bin --out | diff - ../expected.txt && echo bit-exact

`./tinysnn test_pixels.bin` prints each image's class (the first output with the
largest final membrane); `--out` adds the output membranes' codes after the last step.
`expected.txt` holds what the simulator's integer datapath gives for the same {n}
images: the C reproduces it bit for bit.

## Files

- `c/model.h`: sizes, the rounding, the layer record, the step's statements;
- `c/model_data.h`: every layer's weights packed at their width (two's complement,
  row-major [inputs][neurons]) and each layer's constants: shifts onto the accumulator,
  the rounding's offsets, the membrane's range, the leak (`lam`, 16 fractional bits),
  threshold (`th`) and spike threshold on the membrane grid (`thr`);
- `c/diet.c`, `c/diet.h`: `tsnn_diet_infer(pixels, key, out, spikes)`; `c/diet_main.c`:
  the file reader (with `c/tsnn_io.h`); `c/tsnn_common.h`: the hash, floor division and
  bit reader;
- `test_pixels.bin`: `TSNNPIX1`, then uint32 version (1), images and inputs, then per
  image uint32 label, uint64 key (of the counter-based uniforms) and the pixel codes
  0..255 (one byte each; an event design's `TSNN_IN_BYTES`: its `TSNN_T` frames of
  `TSNN_N_IN` spikes 0/1, step-major), little-endian;
- `model.nir`: the network's real values as a NIR graph (Affine, then LIF or IF with one
  threshold per layer, then the output Affine, whose output summed over the steps is the
  output membrane: the metadata's `readout`);
- `evaluation.json`: the record of the re-test that wrote these files.

## Memory

Flash: {params:,} bytes of parameters in the C (the packed weights, `const`; the
per-layer constants besides) and the code. Eq. 4 of the design: {eq4_bits / 8:,.1f}
bytes (membranes at their formats' width).

RAM: the state `diet.c` keeps (its file-scope arrays that are not `const`, read from
these sources with this design's macros; the tests compare each with the compiled
object's symbol), {state:,} bytes:

| array | what | elements x type | bytes |
| --- | --- | --- | ---: |
{ram_rows}

Besides, the input of one image: its {sizes[0]:,} pixel codes (one byte each) and its
key. `diet_main.c`'s buffers ({host:,} bytes) are the host's.
"""
