"""What an exported design costs on a Cortex-M core, measured (issue 26 item 4): the
export's own C compiled for the core (``zig cc``, clang and lld for
``thumb-freestanding-eabi`` at ``-O2``, from the ``ziglang`` package) and run on Unicorn's
ARM emulator (the ``unicorn`` package), counting every Thumb instruction it executes.

A harness (:data:`HARNESS`) calls the library's own entry points: ``tsnn_init`` once,
then ``tsnn_present`` for each presentation of the export's test images (the file's
next, boosted presentation while an image draws fewer than ``TSNN_MIN_SPIKES`` spikes,
as ``main.c`` does), and ``tsnn_classify``; for the gradient-trained family
``tsnn_diet_infer`` per image. The classes the emulated core prints are compared with
``expected.txt`` (the simulator's): the figures are those of a run that is bit-exact on
the target instruction set.

Instructions are counted per basic block (Unicorn's block hook, each block's Thumb-2
instructions decoded once by their lengths: a halfword whose top five bits are 11101,
11110 or 11111 starts a 32-bit instruction). They are instructions, not cycles: Unicorn
does not model a pipeline, wait states or caches. On a Cortex-M4 most instructions take
one cycle; loads two, taken branches two to four (ARM's Cortex-M4 TRM, "Instruction
set summary"), so cycles run above the count. The code bytes are the library's
``.text`` for the core (its object alone, harness and compiler runtime excluded).
"""

from __future__ import annotations

import re
import struct
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tinysnn_dse.export.design import ExportError

#: the cores offered: name -> zig's -mcpu
CPUS = {"cortex-m4": "cortex_m4", "cortex-m3": "cortex_m3", "cortex-m0": "cortex_m0"}
INSTALL = "pip install 'tinysnn-dse[mcu]' (ziglang, unicorn and pyelftools)"

#: what a freestanding build may call although no source does: the compiler emits
#: memset and memcpy for struct and array initialisers
FREESTANDING = """
void *memset(void *d, int c, unsigned long n)
{ unsigned char *p = d; while (n--) *p++ = (unsigned char)c; return d; }
void *memcpy(void *d, const void *s, unsigned long n)
{ unsigned char *p = d; const unsigned char *q = s; while (n--) *p++ = *q++; return d; }
"""

HARNESS = {
    "stdp": """
#include <stdint.h>
#include "model.h"
#include "tinysnn.h"
uint16_t h_steps[TSNN_STEPS];
uint16_t h_inputs[(uint32_t)TSNN_STEPS * TSNN_N_IN];
uint64_t h_key;
int32_t h_counts[TSNN_N];
int32_t h_total, h_class;
void h_init(void) { tsnn_init(); }
void h_present(void)
{
    tsnn_presentation p;
    p.step_spikes = h_steps;
    p.inputs = h_inputs;
    p.key = h_key;
    h_total = tsnn_present(&p, h_counts);
}
void h_classify(void) { h_class = tsnn_classify(h_counts); }
#if TSNN_ENCODER_COUNTER
uint8_t h_pixels[TSNN_N_IN];
uint64_t h_image_key;
uint64_t h_round_keys[TSNN_MAX_BOOSTS + 1];
int32_t h_pres;
void h_infer_pixels(void)
{
    h_pres = tsnn_infer_pixels(h_pixels, h_image_key, h_round_keys, h_counts);
    h_class = tsnn_classify(h_counts);
}
#endif
""",
    "diet": """
#include <stdint.h>
#include "model.h"
#include "diet.h"
#ifndef TSNN_IN_BYTES /* an export written before event designs */
#define TSNN_IN_BYTES TSNN_N_IN
#endif
uint8_t h_pixels[TSNN_IN_BYTES];
uint64_t h_key;
int64_t h_out[TSNN_N_OUT];
int32_t h_class;
void h_init(void) { }
void h_infer(void) { h_class = tsnn_diet_infer(h_pixels, h_key, h_out, 0); }
""",
}


def missing() -> str | None:
    """Why the measurement cannot run here (a one-line reason), or None."""
    for mod in ("ziglang", "unicorn", "elftools"):
        try:
            __import__(mod)
        except ImportError:
            return f"measuring on a Cortex-M core needs {mod}, which is not installed; {INSTALL}"
    return None


def family_of_export(cdir: Path) -> str:
    if (cdir / "diet.c").is_file():
        return "diet"
    if (cdir / "tinysnn.c").is_file():
        return "stdp"
    raise ExportError(f"{cdir}: not an export's c/ folder (no tinysnn.c or diet.c)")


def _zig(args: list[str], what: str) -> None:
    res = subprocess.run([sys.executable, "-m", "ziglang", "cc", *args], capture_output=True,
                         text=True)  # fmt: skip
    if res.returncode != 0:
        first = (res.stderr.strip().splitlines() or ["?"])[0]
        raise ExportError(f"zig cc could not build {what}: {first[:200]}")


def build(cdir: Path, cpu: str, work: Path) -> tuple[Path, int]:
    """The firmware ELF of the export in ``cdir`` with the harness, for ``cpu``, and the
    library's code bytes (``.text`` of its object)."""
    if cpu not in CPUS:
        raise ExportError(f"unknown core {cpu!r}; choose one of {', '.join(CPUS)}")
    fam = family_of_export(cdir)
    lib = cdir / ("diet.c" if fam == "diet" else "tinysnn.c")
    harness = work / "harness.c"
    harness.write_text(HARNESS[fam] + FREESTANDING)
    flags = ["-target", "thumb-freestanding-eabi", f"-mcpu={CPUS[cpu]}", "-O2", "-std=c99",
             "-ffreestanding", f"-I{cdir}"]  # fmt: skip
    elf = work / f"fw-{cpu}.elf"
    _zig([*flags, "-Wl,--entry=h_init", "-o", str(elf), str(lib), str(harness)], "the firmware")
    obj = work / f"lib-{cpu}.o"
    _zig([*flags, "-c", "-o", str(obj), str(lib)], "the library")
    from elftools.elf.elffile import ELFFile

    with obj.open("rb") as f:
        text = sum(int(s["sh_size"]) for s in ELFFile(f).iter_sections()
                   if s.name.startswith(".text"))  # fmt: skip
    return elf, text


class Core:
    """A firmware ELF loaded into Unicorn's M-profile ARM emulator: call its functions,
    read and write its globals, count the instructions each call executes."""

    RET = 0x0010_0000  # where a called function returns to (the emulation stops there)
    STACK = 0x2010_0000  # the top of a 64 KiB stack

    def __init__(self, elf: Path) -> None:
        from elftools.elf.elffile import ELFFile
        from unicorn import UC_ARCH_ARM, UC_HOOK_BLOCK, UC_MODE_MCLASS, UC_MODE_THUMB, Uc

        self.uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS)
        page = 0x1000
        mapped: set[int] = set()
        with elf.open("rb") as f:
            ef = ELFFile(f)
            table: Any = ef.get_section_by_name(".symtab")
            if table is None:
                raise ExportError(f"{elf}: the firmware has no symbol table")
            self.syms = {s.name: (int(s["st_value"]), int(s["st_size"]))
                         for s in table.iter_symbols()}  # fmt: skip
            for seg in ef.iter_segments():
                if seg["p_type"] != "PT_LOAD" or not seg["p_memsz"]:
                    continue
                lo = seg["p_vaddr"] & ~(page - 1)
                hi = (seg["p_vaddr"] + seg["p_memsz"] + page - 1) & ~(page - 1)
                for a in range(lo, hi, page):
                    if a not in mapped:
                        self.uc.mem_map(a, page)
                        mapped.add(a)
                self.uc.mem_write(seg["p_vaddr"], seg.data())  # .bss stays zero
        for base, size in ((self.RET, page), (self.STACK - 0x10000, 0x10000)):
            if base not in mapped:
                self.uc.mem_map(base, size)
        self.count = 0
        self._blocks: dict[tuple[int, int], int] = {}
        self.uc.hook_add(UC_HOOK_BLOCK, self._on_block)

    def _on_block(self, uc: Any, addr: int, size: int, _data: Any) -> None:
        n = self._blocks.get((addr, size))
        if n is None:
            raw = bytes(uc.mem_read(addr, size))
            n = i = 0
            while i < size:
                hw = raw[i] | raw[i + 1] << 8
                i += 4 if (hw >> 11) in (0b11101, 0b11110, 0b11111) else 2
                n += 1
            self._blocks[(addr, size)] = n
        self.count += n

    #: the longest a call may run (microseconds of emulation): a guest that never returns
    TIMEOUT_US = 600_000_000

    def call(self, name: str) -> int:
        """Run function ``name`` (no arguments) to its return; the instructions it took. A
        guest fault, or a call that has not returned after :data:`TIMEOUT_US`, is an
        :class:`ExportError`."""
        from unicorn import UcError
        from unicorn.arm_const import UC_ARM_REG_LR, UC_ARM_REG_PC, UC_ARM_REG_SP

        self.uc.reg_write(UC_ARM_REG_SP, self.STACK - 16)
        self.uc.reg_write(UC_ARM_REG_LR, self.RET | 1)
        self.count = 0
        try:
            self.uc.emu_start(self.syms[name][0] | 1, self.RET, timeout=self.TIMEOUT_US)
        except UcError as e:
            pc = self.uc.reg_read(UC_ARM_REG_PC)
            raise ExportError(f"the emulated core faulted in {name} at {pc:#x} ({e})") from None
        if self.uc.reg_read(UC_ARM_REG_PC) & ~1 != self.RET:
            raise ExportError(f"{name} did not return within {self.TIMEOUT_US // 10**6} s "
                              "of emulation")  # fmt: skip
        return self.count

    def write(self, name: str, data: bytes) -> None:
        addr, size = self.syms[name]
        if len(data) > size:
            raise ExportError(f"{name}: {len(data)} bytes do not fit its {size}")
        self.uc.mem_write(addr, data)

    def read(self, name: str, fmt: str) -> tuple[Any, ...]:
        addr, size = self.syms[name]
        return struct.unpack(fmt, bytes(self.uc.mem_read(addr, struct.calcsize(fmt))))


@dataclass(frozen=True)
class Cost:
    """Instructions on one core over the first ``images`` test images."""

    cpu: str
    images: int
    presentations: int
    per_presentation_mean: float
    per_presentation_max: int
    per_image_mean: float
    init: int
    code_bytes: int
    classes_match: bool
    #: a design with the counter encoder: instructions an image takes from its pixels
    #: (``tsnn_infer_pixels``: the encoder, every presentation and the readout), else None
    per_image_from_pixels_mean: float | None = None


def _expected(cdir: Path, export_dir: Path) -> list[int]:
    for p in (cdir / "expected.txt", export_dir / "expected.txt"):
        if p.is_file():
            return [int(line.split()[0]) for line in p.read_text().splitlines() if line]
    raise ExportError(f"{export_dir}: no expected.txt")


#: instructions of each presentation, of each image, and each image's class
Counted = tuple[list[int], list[int], list[int]]


def _stdp(core: Core, cdir: Path, export_dir: Path, images: int) -> Counted:
    from tinysnn_dse.export import spikes

    path = cdir / "test_spikes.bin"
    if not path.is_file():
        path = export_dir / "test_spikes.bin"
    sf = spikes.read(path)
    defs = dict(re.findall(r"#define (TSNN_\w+) (-?\d+)\b", (cdir / "model.h").read_text()))
    min_spikes, max_boosts = (
        int(defs.get("TSNN_MIN_SPIKES", 0)),
        int(defs.get("TSNN_MAX_BOOSTS", 0)),
    )
    per_pres, per_img, classes = [], [], []
    for pres in sf.images[:images]:
        spent = 0
        for k, p in enumerate(pres):
            core.write("h_steps", p.step_spikes.astype("<u2").tobytes())
            core.write("h_inputs", p.inputs.astype("<u2").tobytes())
            core.write("h_key", struct.pack("<Q", p.key & (2**64 - 1)))
            n = core.call("h_present")
            per_pres.append(n)
            spent += n
            (total,) = core.read("h_total", "<i")
            if total >= min_spikes or min_spikes <= 0 or k >= max_boosts:
                break
        spent += core.call("h_classify")
        per_img.append(spent)
        classes.append(core.read("h_class", "<i")[0])
    return per_pres, per_img, classes


def _from_pixels(core: Core, cdir: Path, images: int) -> tuple[list[int], list[int]]:
    """Instructions and class of each of the first ``images`` images of
    ``test_pixels.bin`` run from their pixels by ``tsnn_infer_pixels``."""
    from tinysnn_dse.export.spikes import PIXEL_MAGIC

    raw = (cdir / "test_pixels.bin").read_bytes()
    if raw[:8] != PIXEL_MAGIC:
        raise ExportError(f"{cdir}/test_pixels.bin: not a tinysnn pixel file")
    try:
        _v, n, n_in = struct.unpack("<3I", raw[8:20])
        pos, per, classes = 20, [], []
        slots = core.syms["h_round_keys"][1] // 8
        for _ in range(min(n, images)):
            _label, key, n_pres = struct.unpack("<iQI", raw[pos : pos + 16])
            pos += 16
            if not 1 <= n_pres <= slots:
                raise ExportError(f"{cdir}/test_pixels.bin: {n_pres} presentations of an image")
            keys = raw[pos : pos + 8 * n_pres]
            core.write("h_round_keys", keys + bytes(8 * slots - len(keys)))
            pos += 8 * n_pres
            core.write("h_pixels", raw[pos : pos + n_in])
            pos += n_in
            core.write("h_image_key", struct.pack("<Q", key))
            per.append(core.call("h_infer_pixels"))
            (ran,) = core.read("h_pres", "<i")
            # a run of other presentations than the simulator's is no match
            classes.append(core.read("h_class", "<i")[0] if ran == n_pres else -2)
    except struct.error:
        raise ExportError(f"{cdir}/test_pixels.bin: truncated") from None
    return per, classes


def _diet(core: Core, cdir: Path, export_dir: Path, images: int) -> Counted:
    raw = (export_dir / "test_pixels.bin").read_bytes()
    if raw[:8] != b"TSNNPIX1":
        raise ExportError(f"{export_dir}/test_pixels.bin: not a tinysnn pixel file")
    _v, n, n_in = struct.unpack("<III", raw[8:20])
    pos, per, classes = 20, [], []
    for _ in range(min(n, images)):
        key = struct.unpack("<Q", raw[pos + 4 : pos + 12])[0]
        core.write("h_pixels", raw[pos + 12 : pos + 12 + n_in])
        core.write("h_key", struct.pack("<Q", key))
        per.append(core.call("h_infer"))
        classes.append(core.read("h_class", "<i")[0])
        pos += 12 + n_in
    return per, per, classes


def measure(export_dir: Path, cpu: str = "cortex-m4", images: int = 5) -> Cost:
    """The instructions the export in ``export_dir`` executes on ``cpu`` for its first
    ``images`` test images (module docstring); an :class:`ExportError` where the
    toolchain is missing or the emulated classes differ from ``expected.txt``."""
    why = missing()
    if why:
        raise ExportError(why)
    cdir = export_dir / "c"
    fam = family_of_export(cdir)
    with tempfile.TemporaryDirectory(prefix="tinysnn-mcu-") as tmp:
        elf, text = build(cdir, cpu, Path(tmp))
        core = Core(elf)
        init = core.call("h_init")
        run = _diet if fam == "diet" else _stdp
        per_pres, per_img, classes = run(core, cdir, export_dir, images)
        from_px = None
        if fam == "stdp" and (cdir / "test_pixels.bin").is_file():
            from_px, px_classes = _from_pixels(core, cdir, images)
            if px_classes != classes:
                classes = []  # the pixels' run disagrees: no match
    want = _expected(cdir, export_dir)[: len(per_img)]
    return Cost(
        cpu=cpu,
        images=len(per_img),
        presentations=len(per_pres),
        per_presentation_mean=float(np.mean(per_pres)) if per_pres else 0.0,
        per_presentation_max=max(per_pres, default=0),
        per_image_mean=float(np.mean(per_img)) if per_img else 0.0,
        init=init,
        code_bytes=text,
        classes_match=classes == want,
        per_image_from_pixels_mean=float(np.mean(from_px)) if from_px else None,
    )


def to_dict(c: Cost) -> dict[str, Any]:
    return asdict(c)


SECTION = "## Cost on a Cortex-M core (measured)"


def readme_section(costs: list[Cost]) -> str:
    """The export README's section on the measured costs, with the method."""
    rows = [
        "| core | images | presentations | instructions a presentation (mean / max) "
        "| an image (with its boosts) | an image from its pixels (encoder included) "
        "| tsnn_init | code bytes |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for c in costs:
        px = "-" if c.per_image_from_pixels_mean is None else f"{c.per_image_from_pixels_mean:,.0f}"
        pres = f"{c.per_presentation_mean:,.0f} / {c.per_presentation_max:,}"
        img = f"{c.per_image_mean:,.0f}"
        rows.append(f"| {c.cpu} | {c.images} | {c.presentations} | {pres} | {img} | {px} | "
                    f"{c.init:,} | {c.code_bytes:,} |")  # fmt: skip
    return "\n".join([
        SECTION,
        "",
        "Measured by `tinysnn mcu` on the first test images of `expected.txt`: this folder's C",
        "compiled for the core by `zig cc` (clang, `-O2`, `thumb-freestanding-eabi`) and run",
        "on Unicorn's ARM emulator, which counted every Thumb instruction executed; the",
        "emulated core printed the classes of `expected.txt` for every image counted.",
        "Instructions, not cycles: most Cortex-M4 instructions take one cycle, loads two,",
        "taken branches two to four, so cycles run above these counts (at 64 MHz, a million",
        "instructions take at least 15.6 ms). Code bytes: the library's `.text` for the core.",
        "",
        *rows,
        "",
    ])  # fmt: skip


def with_section(readme: str, section: str) -> str:
    """``readme`` with its measured-cost section replaced by ``section`` (or appended)."""
    start = readme.find(SECTION)
    if start < 0:
        return readme.rstrip("\n") + "\n\n" + section
    nxt = readme.find("\n## ", start + len(SECTION))
    return readme[:start] + section + ("" if nxt < 0 else "\n" + readme[nxt + 1 :])
