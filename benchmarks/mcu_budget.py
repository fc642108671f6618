"""Flash and RAM of exported MNIST designs against a 256 KiB flash / 64 KiB RAM
microcontroller (issue 26): tinySNN with 100 and 400 neurons at W8/V16/T16 and W4/V8/T8,
and the gradient-trained family's 784-100-10 and 784-400-10 at the same formats. The
sizes do not depend on how well a network learned (dense weight storage), so each is
trained briefly here. Flash: the packed parameter arrays and readout tables (the export
README's memory map) and the library's code (`size` of its object, compiled here with
the host's cc at -Os: x86-64, not the target's, stated as such). RAM: the state arrays
(export/ram.py, checked against the object by the tests) and one input: the largest
presentation of the test images (STDP) or one image's pixels (diet).

With ziglang and unicorn installed (the ``mcu`` extra), the code is the library's
``.text`` for a Cortex-M4 (``zig cc -O2``), and the instructions a presentation and an
image (its boosted re-presentations included) take are counted on Unicorn's ARM emulator
(``tinysnn mcu``, export/mcu.py) over the first 5 test images on a Cortex-M4 and the
first 2 on a Cortex-M0, each run checked against the simulator's classes. The STDP
networks learned from 300 images only: their spike counts, and so their presentations
per image, are those of a briefly trained network.

    TINYSNN_DATA_DIR=../shared/data .venv/bin/python benchmarks/mcu_budget.py
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch

from tinysnn_dse.core.params import QuantSpec, preset
from tinysnn_dse.export import export_design, mcu, ram, spikes
from tinysnn_dse.runner import RunSettings, family_of, load_checkpoint, save, train_and_evaluate

FLASH, RAM = 256 * 1024, 64 * 1024
FORMATS = {"W8/V16/T16": (8, 16, 16), "W4/V8/T8": (4, 8, 8)}


def text_bytes(cdir: Path, source: str) -> int | None:
    cc, size = shutil.which("cc"), shutil.which("size")
    if cc is None or size is None:
        return None
    obj = cdir / "lib.o"
    subprocess.run([cc, "-std=c99", "-Os", "-fno-pic", "-c", "-o", str(obj), str(cdir / source)],
                   check=True, capture_output=True)  # fmt: skip
    out = subprocess.run([size, "-A", str(obj)], check=True, capture_output=True, text=True)
    m = re.search(r"^\.text\s+(\d+)", out.stdout, re.M)
    return int(m.group(1)) if m else None


CSIZE = {"uint8_t": 1, "int8_t": 1, "uint16_t": 2, "int16_t": 2, "uint32_t": 4, "int32_t": 4}


def const_bytes(data_h: str) -> int:
    """Bytes of the ``static const`` arrays of a ``model_data.h`` (the layer table of the
    gradient-trained family: 8 bytes a field, counted as its struct's fields)."""
    total = 0
    for ctype, n in re.findall(r"static const (\w+) \w+\[(\d+)\]", data_h):
        total += CSIZE.get(ctype, 8) * int(n)
    layers = re.search(r"tsnn_layers\[[^\]]+\] = \{(.*?)\};", data_h, re.S)
    if layers:
        total += 8 * 16 * layers.group(1).count("{")  # a pointer and 15 fields, 8 bytes each
    return total


def main() -> None:
    torch.set_num_threads(2)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for family, neurons in (("tinysnn", 100), ("tinysnn", 400), ("diet", 100), ("diet", 400)):
            if family == "tinysnn":
                m = preset("tinysnn", 784, neurons, "mnist")
                s = RunSettings(dataset="mnist", train_samples=300, test_samples=100).validate()
            else:
                m = family_of("diet").model("diet", 784, neurons, 10, "mnist", {"epochs": 1})
                s = RunSettings(dataset="mnist", train_samples=2000, test_samples=100).validate()
            trained, ev = train_and_evaluate(m, QuantSpec(), s, None)
            ckpt = save(Path(tmp) / f"{family}{neurons}", trained, ev)[0]
            for label, (w, v, t) in FORMATS.items():
                out = Path(tmp) / f"{family}{neurons}-{w}"
                q = QuantSpec(scheme="ptq", weight_bits=w, vmem_bits=v, vth_bits=t)
                export_design(load_checkpoint(ckpt), q, out, None, 100)
                cdir = out / "c"
                if family == "tinysnn":
                    src, hdr = "tinysnn.c", ("tinysnn.h", "model.h", "tsnn_common.h")
                    f = spikes.read(cdir / "test_spikes.bin")
                    buf = max(2 * f.n_steps + 2 * len(p.inputs)
                              for pres in f.images for p in pres)  # fmt: skip
                else:
                    src, hdr = "diet.c", ("diet.h", "model.h", "tsnn_common.h")
                    buf = 784
                state = sum(a.bytes for a in ram.of_export(cdir, src, hdr))
                code = text_bytes(cdir, src) or 0
                cost = ""
                if mcu.missing() is None:
                    m4 = mcu.measure(out, "cortex-m4", 5)
                    m0 = mcu.measure(out, "cortex-m0", 2)
                    assert m4.classes_match and m0.classes_match
                    code = m4.code_bytes
                    cost = (f"{m4.per_presentation_mean / 1e6:.2f} / {m4.per_image_mean / 1e6:.2f}"
                            f" | {m0.per_presentation_mean / 1e6:.2f} / {m0.per_image_mean / 1e6:.2f}")
                flash = const_bytes((cdir / "model_data.h").read_text()) + code
                total_ram = state + buf
                rows.append((f"{family} 784-{neurons}", label, flash, code, total_ram, state,
                             buf, cost))  # fmt: skip
    head = ("| design | formats | flash bytes (code) | RAM bytes (state + input) "
            "| fits 256/64 KiB | M4 Minstr. a presentation / an image | M0 |")  # fmt: skip
    print(head)
    print("| --- | --- | ---: | ---: | --- | ---: | ---: |")
    for name, label, flash, code, total_ram, state, buf, cost in rows:
        fits = "yes" if flash <= FLASH and total_ram <= RAM else "no"
        print(
            f"| {name} | {label} | {flash:,} ({code:,}) | {total_ram:,} ({state:,} + {buf:,}) "
            f"| {fits} | {cost or 'not measured | -'} |"
        )


if __name__ == "__main__":
    main()
