"""The NIR graph of an export (``DIR/model.nir``; method.md section 9, docs/model.md
"Export"): the frozen inference network as NIR's continuous-time primitives, written
with ``nir.write``.

tinySNN::  input -> w (Linear) -> exc (LIF) -> output,  exc -> lateral (Linear) -> exc
baseline:: input -> w -> exc -> output,  exc -> delay (Delay, one step) -> exc_inh
           (Linear, one to one) -> inh (LIF) -> inh_exc (Linear) -> exc

Each LIF is ``tau dv/dt = (v_leak - v) + r I``, firing where ``v > v_threshold`` and then
``v = v_reset``. Forward Euler at ``dt`` gives ``v <- v_leak + (v - v_leak)(1 - dt/tau) +
(dt/tau) r I``; with ``tau = dt / (1 - D/2**16)`` (the design's leak factor) and ``r =
tau/dt`` this is the simulator's step ``v <- v_rest + (v - v_rest) D/2**16 + I`` for input
``I`` = the weights of the spikes of a step. Potentials are in mV relative to each
population's resting potential (NIR has no voltage origin; ``v_leak`` is 0), time in
seconds, and every value is the quantized design's (weights, thresholds and constants
on their grids). What NIR cannot say is in the metadata: the fixed-point formats and
rounding, the refractory period (none in NIR), a membrane floor (the excitatory node's
``v_floor``, mV relative to rest, on the Vmem grid), the comparison ``>=`` (NIR's ``>``), the
re-presentation at a boosted rate of a silent image, and the readout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tinysnn_dse.core import integer
from tinysnn_dse.core.integer import IntDesign, IntLayer
from tinysnn_dse.core.modes import Topology
from tinysnn_dse.core.params import ModelConfig
from tinysnn_dse.core.quant import Quantizers
from tinysnn_dse.core.sim import Net


def _lif(lay: IntLayer, d: IntDesign, thr_mv: np.ndarray, dt_s: float, **meta: Any) -> Any:
    import nir

    n = thr_mv.shape[0]
    eps = d.vmem.eps
    leak = lay.decay / 2**integer.LEAK_BITS
    if leak >= 1.0:  # IF: no leak (NIR's IF: dv/dt = r I; Euler: r = 1/dt)
        return nir.IF(
            r=np.full(n, 1.0 / dt_s),
            v_threshold=thr_mv - lay.rest * eps,
            v_reset=np.full(n, (lay.reset - lay.rest) * eps),
            metadata=meta,
        )
    tau = dt_s / (1.0 - leak)
    return nir.LIF(
        tau=np.full(n, tau),
        r=np.full(n, tau / dt_s),
        v_leak=np.zeros(n),
        v_threshold=thr_mv - lay.rest * eps,
        v_reset=np.full(n, (lay.reset - lay.rest) * eps),
        metadata=meta,
    )


def build(net: Net, cfg: ModelConfig, d: IntDesign, qz: Quantizers, meta: dict[str, Any]) -> Any:
    """The NIR graph of the quantized network ``net`` on the integer datapath ``d``."""
    import nir

    n, n_in = cfg.n_exc, cfg.n_in
    dt_s = cfg.encoding.dt_ms / 1000.0
    ev = d.vmem.eps
    w = integer.codes(net.w, d.weight).astype(np.float64) * d.weight.eps  # [n_in, n]
    tc = integer.threshold_codes(net.theta, cfg, qz).astype(np.float64) * d.vth.eps
    exc_meta: dict[str, Any] = {
        "v_rest_mv": d.exc.rest * ev,
        "refractory_steps": d.exc.ref_steps,
        "threshold": "v >= v_threshold in tinysnn (NIR: v > v_threshold)",
    }
    if cfg.exc.vmem_floor_mv > 0:  # NIR has no floor: said here (issue 28)
        exc_meta["v_floor"] = (d.floor - d.exc.rest) * ev
        exc_meta["floor"] = "v = max(v, v_floor) after every step (tinysnn; NIR has none)"
    nodes: dict[str, Any] = {
        "input": nir.Input(input_type=np.array([n_in])),
        "w": nir.Linear(weight=w.T.copy(), metadata={"format": d.weight.describe()}),
        "exc": _lif(d.exc, d, tc, dt_s, **exc_meta),
        "output": nir.Output(output_type=np.array([n])),
    }
    edges = [("input", "w"), ("w", "exc"), ("exc", "output")]
    off = 1.0 - np.eye(n)
    if cfg.topology == Topology.LATERAL:
        nodes["lateral"] = nir.Linear(weight=-d.w_rec * ev * off)
        edges += [("exc", "lateral"), ("lateral", "exc")]
    else:
        ithr = np.full(n, d.inh_thr * d.vth.eps)
        nodes["exc_inh"] = nir.Linear(weight=d.w_exc_inh * ev * np.eye(n))
        nodes["delay"] = nir.Delay(delay=np.full(n, dt_s))
        nodes["inh"] = _lif(d.inh, d, ithr, dt_s, v_rest_mv=d.inh.rest * ev,
                            refractory_steps=d.inh.ref_steps)  # fmt: skip
        nodes["inh_exc"] = nir.Linear(weight=-d.w_rec * ev * off)
        edges += [("exc", "delay"), ("delay", "exc_inh"), ("exc_inh", "inh"),
                  ("inh", "inh_exc"), ("inh_exc", "exc")]  # fmt: skip
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=_clean(meta))


def _clean(x: Any) -> Any:
    """``x`` without None values (``nir.write`` cannot store them)."""
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items() if v is not None}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x if v is not None]
    return x


def write(graph: Any, path: Path) -> None:
    import nir

    nir.write(str(path), graph)
