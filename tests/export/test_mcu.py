"""The export on a Cortex-M core (issue 26 item 4): the exported C built for Thumb by zig
cc and run on Unicorn's ARM emulator prints the simulator's classes (bit-exact on the
target instruction set), and its instruction counter agrees with hand counts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tinysnn_dse.cli import main
from tinysnn_dse.export import mcu

pytestmark = pytest.mark.skipif(mcu.missing() is not None, reason="no ziglang / unicorn")


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        main(list(args))
    out, err = capsys.readouterr()
    return int(e.value.code or 0), out, err


def test_the_counter_counts_hand_written_thumb(tmp_path: Path) -> None:
    """16- and 32-bit Thumb-2 instructions, straight and in a loop, counted by hand."""
    src = tmp_path / "p.c"
    src.write_text(
        "__attribute__((naked)) void h_init(void)\n{\n"
        '    __asm__ volatile("movs r0, #0\\n\\tadds r0, #1\\n\\tadds.w r0, r0, #1\\n\\t"\n'
        '                     "movw r1, #1000\\n\\tbx lr\\n");\n}\n'
        "__attribute__((naked)) void h_loop(void)\n{\n"
        '    __asm__ volatile("movs r0, #10\\n1:\\n\\tsubs r0, #1\\n\\tbne 1b\\n\\tbx lr\\n");\n}\n'
    )
    elf = tmp_path / "p.elf"
    mcu._zig(["-target", "thumb-freestanding-eabi", "-mcpu=cortex_m4", "-O2", "-ffreestanding",
              "-Wl,--entry=h_init", "-o", str(elf), str(src)], "the probe")  # fmt: skip
    core = mcu.Core(elf)
    assert core.call("h_init") == 5  # two 16-bit, two 32-bit (adds.w, movw), bx lr
    assert core.call("h_loop") == 1 + 10 * 2 + 1  # movs, ten (subs, bne), bx lr


@pytest.fixture(scope="module")
def stdp_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mcu")
    for args in (["train", "--dataset", "digits", "--neurons", "30", "--threads", "1",
                  "--out", str(root / "m")],
                 ["export", str(root / "m" / "model.pt"), "--out", str(root / "x"),
                  "--weight-bits", "8", "--vmem-bits", "16", "--vth-bits", "16",
                  "--test-samples", "3"]):  # fmt: skip
        with pytest.raises(SystemExit) as e:
            main(args)
        assert (e.value.code or 0) == 0
    return root / "x"


def test_stdp_export_is_bit_exact_on_cortex_m4_and_m0(capsys, stdp_export: Path) -> None:
    code, out, err = cli(capsys, "mcu", str(stdp_export), "--cpu", "cortex-m4", "--cpu",
                         "cortex-m0", "--images", "1", "--json")  # fmt: skip
    assert code == 0, err
    rows = {r["cpu"]: r for r in json.loads(out)}
    for r in rows.values():
        assert r["classes_match"] and r["images"] == 1 and r["presentations"] >= 1
        assert r["per_presentation_max"] >= r["per_presentation_mean"] > 0
        assert 0 < r["code_bytes"] < 16_384
    # the Cortex-M0 has no 32x32->64 multiply nor 32-bit Thumb-2 arithmetic: the same
    # presentations take it more instructions
    assert rows["cortex-m0"]["per_presentation_mean"] > rows["cortex-m4"]["per_presentation_mean"]
    readme = (stdp_export / "README.md").read_text()
    assert readme.count(mcu.SECTION) == 1 and "| cortex-m0 | 1 |" in readme
    assert json.loads((stdp_export / "mcu.json").read_text()) == json.loads(out)
    # measured again: the section is replaced, not repeated
    code, _o, err = cli(capsys, "mcu", str(stdp_export), "--images", "1")
    assert code == 0, err
    readme = (stdp_export / "README.md").read_text()
    assert readme.count(mcu.SECTION) == 1 and "| cortex-m0 |" not in readme


def test_diet_export_is_bit_exact_on_cortex_m4(capsys, tmp_path: Path) -> None:
    for args in (["train", "--dataset", "digits", "--model", "diet", "--neurons", "32",
                  "-p", "epochs=5", "-p", "encoding=poisson", "--out", str(tmp_path / "m")],
                 ["export", str(tmp_path / "m" / "model.pt"), "--out", str(tmp_path / "x"),
                  "--weight-bits", "6", "--vmem-bits", "12", "--vth-bits", "8",
                  "--rounding", "stochastic", "--test-samples", "20"]):  # fmt: skip
        code, _o, err = cli(capsys, *args)
        assert code == 0, err
    code, out, err = cli(capsys, "mcu", str(tmp_path / "x"), "--images", "20", "--json")
    assert code == 0, err
    (r,) = json.loads(out)
    assert r["classes_match"] and r["images"] == r["presentations"] == 20


def test_bad_input_is_one_line(capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               stdp_export: Path) -> None:  # fmt: skip
    code, _o, err = cli(capsys, "mcu", str(tmp_path))
    assert code == 2 and "not a folder `tinysnn export` wrote" in err
    code, _o, err = cli(capsys, "mcu", str(stdp_export), "--cpu", "cortex-a53")
    assert code == 2 and "unknown core" in err and len(err.strip().splitlines()) == 1
    monkeypatch.setattr(mcu, "missing", lambda: "measuring needs ziglang; pip install x")
    code, _o, err = cli(capsys, "mcu", str(stdp_export))
    assert code == 2 and "needs ziglang" in err and len(err.strip().splitlines()) == 1


def test_a_counter_encoder_design_runs_from_pixels_on_the_core(capsys, tmp_path: Path) -> None:
    """The firmware path from pixels (tsnn_infer_pixels: the encoder, the re-presentations,
    the readout) on the emulated core prints the simulator's classes and costs more than
    the same presentations from stored spikes (the encoder's hashes)."""
    for args in (["train", "--dataset", "digits", "--neurons", "20", "--threads", "1", "-p",
                  "encoder=counter", "--out", str(tmp_path / "m")],
                 ["export", str(tmp_path / "m" / "model.pt"), "--out", str(tmp_path / "x"),
                  "--weight-bits", "8", "--vmem-bits", "16", "--vth-bits", "16",
                  "--test-samples", "2"]):  # fmt: skip
        code, _o, err = cli(capsys, *args)
        assert code == 0, err
    code, out, err = cli(capsys, "mcu", str(tmp_path / "x"), "--images", "1", "--json")
    assert code == 0, err
    (r,) = json.loads(out)
    assert r["classes_match"]
    assert r["per_image_from_pixels_mean"] > r["per_image_mean"]
    assert "an image from its pixels" in (tmp_path / "x" / "README.md").read_text()
