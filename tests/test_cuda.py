"""The same code on CUDA: runs only where a GPU is visible (CI has none; the project's
GPU machine runs it, see docs/benchmarks.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tinysnn_dse.cli import main
from tinysnn_dse.core import sim
from tinysnn_dse.core.energy import OpCounts
from tinysnn_dse.core.params import QuantSpec, apply_overrides, preset
from tinysnn_dse.core.quant import Quantizers

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

CASES = [
    ("tinysnn", QuantSpec()),
    ("tinysnn", QuantSpec(scheme="itq", rounding="nearest", weight_bits=8, vmem_bits=16)),
    ("baseline", QuantSpec()),
    ("sl-stdp", QuantSpec(scheme="itq", rounding="truncate", weight_bits=10)),
]


@pytest.mark.parametrize(("model", "q"), CASES)
def test_reference_path_agrees_on_cpu_and_cuda(model: str, q: QuantSpec) -> None:
    """Same spikes and deterministic rounding (one-spike rule off, so nothing is drawn):
    learning on CUDA ends where it ends on the CPU, to float32 rounding of the products
    (TF32 is off for float32 matmuls by default)."""
    cfg = preset(model, 196, 30, one_spike="false")
    qz = Quantizers.from_spec(q) if q.scheme == "itq" else Quantizers.fp32()
    g = torch.Generator().manual_seed(0)
    net0 = sim.init_net(cfg, g)
    pix = torch.rand(3, 196, generator=torch.Generator().manual_seed(1)) ** 2
    trains = [sim.poisson(p.unsqueeze(0), 250, 0.128, g) for p in pix]
    out = {}
    for dev in ("cpu", "cuda"):
        gd = torch.Generator(device=dev).manual_seed(0)
        net = sim.Net(net0.w.to(dev), net0.theta.to(dev))
        counts = []
        for s in trains:
            net, c = sim.simulate_reference(net, s.to(dev), cfg, qz, gd, learn=True)
            counts.append(c.cpu())
        out[dev] = (net.w.cpu(), net.theta.cpu(), torch.stack(counts))
    (wc, tc, cc), (wg, tg, cg) = out["cpu"], out["cuda"]
    assert cc.sum() > 0
    assert torch.equal(cc, cg)
    torch.testing.assert_close(wg, wc, rtol=0, atol=1e-5)
    torch.testing.assert_close(tg, tc, rtol=0, atol=1e-5)


def test_inference_agrees_on_cpu_and_cuda() -> None:
    """Batched inference from the same dense spikes: equal spike counts within the fast
    path's tolerance (at most 1 % of counts differ, by at most one spike)."""
    cfg = preset("tinysnn", 196, 40)
    g = torch.Generator().manual_seed(2)
    net = sim.init_net(cfg, g)
    net = sim.Net(net.w, net.theta + torch.rand(40, generator=g) * 3)
    spikes = sim.poisson(torch.rand(64, 196, generator=g) ** 2, 250, 0.128, g)
    qz = Quantizers.fp32()
    cpu = sim.simulate_reference(net, spikes, cfg, qz, g, learn=False)[1]
    gd = torch.Generator(device="cuda").manual_seed(0)
    gpu_net = sim.Net(net.w.cuda(), net.theta.cuda())
    gpu = sim.simulate_reference(gpu_net, spikes.cuda(), cfg, qz, gd, learn=False)[1].cpu()
    assert cpu.sum() > 100
    diff = (cpu - gpu).abs()
    assert float((diff > 0).float().mean()) <= 0.01 and float(diff.max()) <= 1


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        main(list(args))
    out, err = capsys.readouterr()
    return int(e.value.code or 0), out, err


def test_train_and_evaluate_on_cuda(capsys, tmp_path: Path) -> None:
    """`train --device cuda` end to end (NVML energy where it is readable), and a
    checkpoint trained on the CPU evaluates on CUDA."""
    common = ("--dataset", "digits", "--neurons", "40", "--train-samples", "200",
              "--test-samples", "200", "--json")  # fmt: skip
    code, out, err = run(capsys, "train", *common, "--device", "cuda", "--out", str(tmp_path / "g"))
    assert code == 0, err
    rec = json.loads(out)
    assert rec["environment"]["device"].startswith("cuda")
    assert rec["outcome"]["accuracy"] > 0.3
    assert rec["energy"]["train"]["measured_method"] in ("nvml", "time x power")
    code, out, err = run(capsys, "train", *common, "--device", "cpu", "--out", str(tmp_path / "c"))
    assert code == 0, err
    cpu_acc = json.loads(out)["outcome"]["accuracy"]
    code, out, err = run(
        capsys, "evaluate", str(tmp_path / "c" / "model.pt"), "--device", "cuda", "--json"
    )
    assert code == 0, err
    assert (
        abs(json.loads(out)["outcome"]["accuracy"] - cpu_acc) < 0.08
    )  # other random stream on CUDA


# ------------------------------------------------------------ fused kernels (Triton)

needs_triton = pytest.mark.skipif(
    not sim.gpu_kernels.HAVE_TRITON, reason="Triton not installed (torch's CPU build)"
)

MIXED = [
    QuantSpec(),
    QuantSpec(scheme="itq", rounding="nearest", weight_bits=8, vmem_bits=16, vth_bits=16),
    QuantSpec(scheme="itq", rounding="truncate", weight_bits=6),
    QuantSpec(scheme="itq", rounding="nearest", weight_bits=4, vmem_bits=12, vth_bits=12),
]
STOCHASTIC = [
    QuantSpec(scheme="itq", rounding="stochastic", weight_bits=8),
    QuantSpec(scheme="itq", rounding="stochastic", weight_bits=8, vmem_bits=16, vth_bits=16),
    QuantSpec(scheme="itq", rounding="stochastic", weight_bits=12, vmem_bits=8, vth_bits=8),
]


def _start(cfg, qz: Quantizers) -> sim.Net:  # type: ignore[no-untyped-def]
    g = torch.Generator().manual_seed(0)
    net = sim.init_net(cfg, g)
    return net if qz.is_fp32 else sim.quantize_net(net, cfg, qz, g)


def _batch_run(cfg, specs, pix, device: str, cfgs=None):  # type: ignore[no-untyped-def]
    qzs = [Quantizers.from_spec(q) if q.scheme == "itq" else Quantizers.fp32() for q in specs]
    batch = sim.DesignBatch([_start(cfg, q) for q in qzs], cfg, qzs, device=device, cfgs=cfgs)
    g = torch.Generator().manual_seed(1)
    stats = [OpCounts() for _ in qzs]
    counts = torch.stack([batch.train_sample(p, g, stats) for p in pix])  # [S, K, N]
    return counts, [sim.Net(n.w.cpu(), n.theta.cpu()) for n in batch.nets()], stats


@needs_triton
@pytest.mark.parametrize("topology", ["lateral", "inhibitory"])
def test_fused_cuda_batch_equals_cpu_batch(topology: str) -> None:
    """Deterministic rounding, a CPU generator for both: the fused CUDA kernels end where
    the Numba kernels end (same spike counts and event counts; thresholds and weights to
    float32 rounding), including boosted re-presentations of a faint image."""
    cfg = preset("tinysnn", 196, 40, topology=topology)
    pix = 0.3 + 0.7 * torch.rand(8, 196, generator=torch.Generator().manual_seed(5))
    pix[3] *= 0.02
    # per-point learning parameters too (the tuning batches of benchmarks/tune_batch.py)
    cfgs = [
        cfg,
        apply_overrides(cfg, {"theta_plus_mv": 4.0, "eta": 0.02}),
        apply_overrides(cfg, {"s_th": 5.0, "norm_per_input": 0.08}),
        apply_overrides(cfg, {"w_lateral": 10.0, "w_inh_exc": 10.0}),
    ]
    cc, nc, sc = _batch_run(cfg, MIXED, pix, "cpu", cfgs)
    cg, ng, sg = _batch_run(cfg, MIXED, pix, "cuda", cfgs)
    assert cc.sum() > 0
    assert torch.equal(cc, cg)
    for a, b in zip(nc, ng, strict=True):
        torch.testing.assert_close(b.theta, a.theta, rtol=0, atol=1e-4)
        torch.testing.assert_close(b.w, a.w, rtol=0, atol=1e-5)
    assert [s.to_dict() for s in sc] == [s.to_dict() for s in sg]


@needs_triton
def test_fused_cuda_batch_rounds_stochastically_like_the_cpu_batch() -> None:
    """Stochastic rounding: the same uniforms (CPU generator for Vmem/Vth, the shared
    counter-based hash for W) on both devices. A float32 difference can flip a rounding
    decision now and then, so the runs must agree closely, not exactly; weights stay on
    each point's grid."""
    cfg = preset("tinysnn", 196, 30)
    pix = 0.3 + 0.7 * torch.rand(8, 196, generator=torch.Generator().manual_seed(6))
    cc, nc, _ = _batch_run(cfg, STOCHASTIC, pix, "cpu")
    cg, ng, _ = _batch_run(cfg, STOCHASTIC, pix, "cuda")
    assert cc.sum() > 0
    assert float((cc != cg).float().mean()) <= 0.01
    for a, b, q in zip(nc, ng, STOCHASTIC, strict=True):
        eps = Quantizers.from_spec(q).weight.eps  # type: ignore[union-attr]
        assert torch.equal(torch.round(b.w / eps) * eps, b.w)
        assert float((a.w != b.w).float().mean()) <= 0.01


@needs_triton
def test_fused_cuda_single_point_equals_reference() -> None:
    """A batch of one on CUDA against the plain torch reference on the CPU, same seed:
    the fused path computes what the reference computes."""
    cfg = preset("tinysnn", 196, 40)
    spec = QuantSpec(scheme="itq", rounding="nearest", weight_bits=8, vmem_bits=16, vth_bits=16)
    qz = Quantizers.from_spec(spec)
    pix = 0.3 + 0.7 * torch.rand(5, 196, generator=torch.Generator().manual_seed(9))
    counts, nets, _ = _batch_run(cfg, [spec], pix, "cuda")
    g = torch.Generator().manual_seed(1)
    net, ref = _start(cfg, qz), []
    for p in pix:
        net, c = sim.train_sample(net, p, cfg, qz, g, backend="reference")
        ref.append(c)
    assert torch.equal(counts[:, 0], torch.stack(ref))
    torch.testing.assert_close(nets[0].w, net.w, rtol=0, atol=1e-5)
    torch.testing.assert_close(nets[0].theta, net.theta, rtol=0, atol=1e-4)


@needs_triton
def test_bench_on_cuda_uses_the_fused_kernels(capsys) -> None:
    code, out, err = run(
        capsys, "bench", "--device", "cuda", "--dataset", "digits", "--neurons", "40",
        "--train-images", "20", "--infer-images", "100", "--design-points", "4", "--json",
    )  # fmt: skip
    assert code == 0, err
    rec = json.loads(out)
    assert rec["backend"]["train"] == "triton"
    assert rec["design_batch"]["design_points"] == 4
    assert rec["train_images_per_s"] > 0


@needs_triton
def test_fused_cuda_batch_prunes_like_the_cpu_batch() -> None:
    """STDP pruning in a design batch (issue 15): the fused CUDA kernels keep each point's
    pruned synapses at 0 and end where the Numba batch ends, pruning rounds included
    (same counts, masks and event counts; weights to float32 rounding). Checked by hand
    under TRITON_INTERPRET=1 on the CPU (benchmarks/triton_interpret_check.py)."""
    cfg = apply_overrides(preset("tinysnn", 196, 40), {"prune": 0.5, "prune_rounds": 2})
    pix = 0.3 + 0.7 * torch.rand(8, 196, generator=torch.Generator().manual_seed(5))
    out = {}
    for device in ("cpu", "cuda"):
        qzs = [Quantizers.from_spec(q) if q.scheme == "itq" else Quantizers.fp32() for q in MIXED]
        batch = sim.DesignBatch([_start(cfg, q) for q in qzs], cfg, qzs, device=device)
        g = torch.Generator().manual_seed(1)
        stats = [OpCounts() for _ in qzs]
        counts = []
        for i, p in enumerate(pix):
            counts.append(batch.train_sample(p, g, stats))
            if i + 1 in (2, 4):
                batch.prune(0.25 if i + 1 == 2 else 0.5, g, stats)
        out[device] = (torch.stack(counts), batch.nets(), [s.to_dict() for s in stats])
    (cc, nc, sc), (cg, ng, sg) = out["cpu"], out["cuda"]
    assert torch.equal(cc, cg) and sc == sg
    for a, b in zip(nc, ng, strict=True):
        assert a.keep is not None and b.keep is not None
        assert torch.equal(a.keep, b.keep.cpu())
        assert float(b.w[~b.keep].abs().max()) == 0.0
        torch.testing.assert_close(b.w.cpu(), a.w, rtol=0, atol=1e-5)


def test_diet_trains_and_tests_on_cuda(capsys, tmp_path: Path) -> None:
    """The gradient-trained family on CUDA (issue 24 item 8): a fixed-point point trains
    on the GPU, tests in integers, and its checkpoint re-tests on the CPU to within a few
    images (its ranges are observed in float32 on another device)."""
    out = tmp_path / "d"
    with pytest.raises(SystemExit) as e:
        main(["train", "--model", "diet", "--dataset", "digits", "--neurons", "32",
              "--device", "cuda", "-p", "epochs=15", "--weight-bits", "8", "--vmem-bits", "16",
              "--vth-bits", "16", "--out", str(out), "--json"])  # fmt: skip
    text, err = capsys.readouterr()
    assert (e.value.code or 0) == 0, err
    rec = json.loads(text)
    assert rec["environment"]["device"].startswith("cuda")
    assert rec["backend"]["infer_datapath"] == "integer" and rec["outcome"]["accuracy"] > 0.8
    with pytest.raises(SystemExit) as e:
        main(["evaluate", str(out / "model.pt"), "--device", "cpu", "--weight-bits", "8",
              "--vmem-bits", "16", "--vth-bits", "16", "--json"])  # fmt: skip
    text, err = capsys.readouterr()
    assert (e.value.code or 0) == 0, err
    assert abs(json.loads(text)["outcome"]["accuracy"] - rec["outcome"]["accuracy"]) < 0.03


def test_robustness_on_cuda(capsys, tmp_path: Path) -> None:
    """The attacks on CUDA (issue 25): a diet checkpoint attacked on the GPU, white box and
    transfer; epsilon 0 changes nothing and every attacked accuracy is below the clean
    one."""
    pytest.importorskip("torchattacks")
    out = tmp_path / "d"
    with pytest.raises(SystemExit) as e:
        main(["train", "--model", "diet", "--dataset", "digits", "--neurons", "32",
              "--device", "cuda", "-p", "epochs=15", "--out", str(out)])  # fmt: skip
    assert (e.value.code or 0) == 0, capsys.readouterr().err
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(["evaluate", str(out / "model.pt"), "--device", "cuda", "--attack", "fgsm",
              "--attack", "pgd", "--epsilon", "0", "--epsilon", "0.2", "--json"])  # fmt: skip
    text, err = capsys.readouterr()
    assert (e.value.code or 0) == 0, err
    rob = json.loads(text)["outcome"]["robustness"]
    assert rob["white-pgd-0"] == rob["transfer-fgsm-0"] == rob["clean"]
    assert rob["white-pgd-0.2"] < rob["clean"] and rob["transfer-pgd-0.2"] < rob["clean"]
