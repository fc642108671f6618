"""Simulator throughput: training and inference images per second (``tinysnn bench``).

Measures the same code paths that ``tinysnn train`` uses, on the chosen data set (``digits``
runs at its own 64 inputs), after a warm-up that excludes one-time JIT compilation.
"""

from __future__ import annotations

import dataclasses
import platform
import time
from pathlib import Path
from typing import Any

import torch

from tinysnn_dse import __version__
from tinysnn_dse import data as data_mod
from tinysnn_dse.core.backend import Backend, choose
from tinysnn_dse.core.energy import OpCounts
from tinysnn_dse.core.params import QuantSpec, apply_overrides, preset, validate_quant
from tinysnn_dse.core.quant import Quantizers
from tinysnn_dse.core.sim import (
    DesignBatch,
    Net,
    infer,
    init_net,
    quantize_net,
    train_sample,
)
from tinysnn_dse.errors import ConfigError
from tinysnn_dse.runner import default_batch_size, load_checkpoint, resolve_device


def benchmark(
    dataset: str = "mnist",
    neurons: int = 400,
    model: str = "tinysnn",
    steps: int = 250,
    quant: QuantSpec | None = None,
    train_images: int = 200,
    infer_images: int = 2000,
    batch_size: int | None = None,
    device: str = "cpu",
    threads: int | None = None,
    data_dir: str | None = None,
    seed: int = 0,
    reference: bool = False,
    design_points: int = 1,
    checkpoint: str | None = None,
) -> dict[str, Any]:
    """Time ``train_images`` learning presentations and ``infer_images`` batched tests.

    ``reference`` forces the plain torch path (no compiled kernels) for comparison.
    ``design_points`` K > 1 also times K points trained together on shared input
    (:class:`DesignBatch`; tinySNN rule, CPU): the quantized precision's variants with
    weight bits cycling through 16, 12, 10, 8, 6, 4 (K copies when FP32). The result
    then holds the aggregate rate (K x images / s) and its ratio to the single point.
    ``checkpoint`` starts from a trained network (its model; ``model``, ``neurons`` and
    ``steps`` are ignored): late in a pass thresholds are high and more images need
    boosted re-presentations, so rates differ from a fresh network's.
    """
    quant = validate_quant(quant or QuantSpec())
    dev = resolve_device(device)
    batch_size = batch_size or default_batch_size(dev)
    if threads:
        torch.set_num_threads(threads)
    ds = data_mod.load(dataset, data_dir)
    start = load_checkpoint(Path(checkpoint), str(dev)) if checkpoint else None
    if start is not None:
        cfg = start.model
    else:
        cfg = preset(model, ds.n_in, neurons, dataset)
        cfg = apply_overrides(cfg, {"t_present_ms": steps * cfg.encoding.dt_ms})
    if cfg.n_in != ds.n_in:
        raise ConfigError(f"{checkpoint}: has {cfg.n_in} inputs, {dataset} has {ds.n_in}")
    itq = quant.scheme == "itq" and not quant.is_fp32
    qz_train = Quantizers.from_spec(quant) if itq else Quantizers.fp32()
    qz_eval = Quantizers.from_spec(quant)
    need = max(train_images, 1) + 20
    x = torch.from_numpy(ds.train_images[:need].copy()).to(dev).float() / 255.0
    xi = torch.from_numpy(ds.test_images[: min(infer_images, len(ds.test_images))].copy())
    xi = xi.to(dev).float() / 255.0
    g = torch.Generator(device=dev).manual_seed(seed)
    net = start.net if start is not None else init_net(cfg, g, dev)
    if itq:
        net = quantize_net(net, cfg, qz_train, g)

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    ops, iops = OpCounts(), OpCounts()
    # CUDA, tinySNN rule: the fused kernels, as `train` runs them (a batch of one point)
    train_backend = Backend.REFERENCE if reference else choose("learn", cfg, qz_train, dev)
    infer_backend = Backend.REFERENCE if reference else choose("infer", cfg, qz_eval, dev)
    fused_gpu = train_backend == Backend.TRITON
    first = start.net if start is not None else None
    if fused_gpu:
        one = _time_design_batch(cfg, quant, x, train_images, 1, seed, first, ops)
        train_s = train_images / one["train_images_per_s"]
        net = one["nets"][0]
        infer(net, xi[: min(len(xi), batch_size)], cfg, qz_eval, g, batch_size, infer_backend)
    else:
        for i in range(3):  # warm-up: JIT compilation, allocator, caches
            net, _ = train_sample(net, x[train_images + i], cfg, qz_train, g, train_backend)
        infer(net, xi[: min(len(xi), batch_size)], cfg, qz_eval, g, batch_size, infer_backend)
        sync()
        t0 = time.perf_counter()
        for i in range(train_images):
            net, _ = train_sample(net, x[i], cfg, qz_train, g, train_backend, ops)
        sync()
        train_s = time.perf_counter() - t0
    multi: dict[str, Any] = {}
    if design_points > 1:
        multi = _time_design_batch(cfg, quant, x, train_images, design_points, seed, first)
        multi.pop("nets")
        multi["speedup_vs_single"] = multi["train_images_per_s"] / (train_images / train_s)
    qnet = quantize_net(net, cfg, qz_eval, g)
    t0 = time.perf_counter()
    infer(qnet, xi, cfg, qz_eval, g, batch_size, infer_backend, iops)
    sync()
    infer_s = time.perf_counter() - t0
    return {
        "train_images_per_s": train_images / train_s,
        "infer_images_per_s": len(xi) / infer_s,
        "train_images": train_images,
        "presentations_per_train_image": ops.presentations / train_images,
        "presentations_per_infer_image": iops.presentations / max(1, len(xi)),
        "design_batch": multi or None,
        "infer_images": len(xi),
        "backend": {"train": train_backend.value, "infer": infer_backend.value},
        "settings": {
            "dataset": dataset,
            "neurons": cfg.n_exc,
            "model": cfg.model,
            "steps": cfg.encoding.steps,
            "checkpoint": checkpoint,
            "dt_ms": cfg.encoding.dt_ms,
            "quant": quant.label(),
            "batch_size": batch_size,
            "device": str(dev),
            "threads": torch.get_num_threads(),
        },
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "tinysnn": __version__,
            "cuda_device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else None,
        },
    }


def _time_design_batch(
    cfg: Any,
    quant: QuantSpec,
    x: torch.Tensor,
    n: int,
    k: int,
    seed: int,
    first: Any = None,
    stats: OpCounts | None = None,
) -> dict[str, Any]:
    """Aggregate learning rate of ``k`` design points trained together (see benchmark) on
    the device of ``x``; ``k == 1`` times ``quant`` itself. ``stats`` counts the first
    point's events. The result's ``nets`` are the trained networks."""
    if cfg.rule != "tinysnn":
        raise ConfigError("--design-points needs the tinysnn model")
    choose("batch", cfg, Quantizers.fp32(), x.device)  # numba on the CPU, Triton on CUDA
    bits = (16, 12, 10, 8, 6, 4)
    specs = [
        quant
        if quant.weight_bits is None or k == 1
        else dataclasses.replace(quant, weight_bits=bits[i % 6])
        for i in range(k)
    ]
    qzs = [Quantizers.from_spec(validate_quant(s)) if s.scheme == "itq" else Quantizers.fp32()
           for s in specs]  # fmt: skip
    g = torch.Generator().manual_seed(seed)
    net = first if first is not None else init_net(cfg, g)
    net = Net(net.w.cpu(), net.theta.cpu())
    batch = DesignBatch([quantize_net(net, cfg, q, g) for q in qzs], cfg, qzs, x.device)
    if x.device.type == "cuda":  # as runner.train_batch: draw on the GPU
        g = torch.Generator(device=x.device).manual_seed(seed)
    for i in range(3):  # warm-up: JIT compilation
        batch.train_sample(x[n + i], g)
    if x.device.type == "cuda":
        torch.cuda.synchronize(x.device)
    per_point = None if stats is None else [stats] + [OpCounts() for _ in range(k - 1)]
    t0 = time.perf_counter()
    for i in range(n):
        batch.train_sample(x[i], g, per_point)
    if x.device.type == "cuda":
        torch.cuda.synchronize(x.device)
    dt = time.perf_counter() - t0
    return {
        "design_points": k,
        "precisions": [s.label() for s in specs],
        "train_images_per_s": k * n / dt,
        "per_point_images_per_s": n / dt,
        "nets": batch.nets(),
    }
