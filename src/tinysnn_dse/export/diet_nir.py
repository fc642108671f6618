"""The NIR graph of an export of the gradient-trained family (``DIR/model.nir``): the
network as NIR's continuous-time primitives, a feed-forward graph that a consumer runs as
written::

    input -> w0 (Affine) -> lif0 (LIF or IF) [-> w1 -> lif1] -> w_out (Affine) -> output

Each hidden population is ``tau dv/dt = (v_leak - v) + r I`` firing where ``v >
v_threshold``, with ``tau = dt / (1 - lambda)`` and ``r = 1``; the Affine that feeds it
carries its weights times ``1 / (1 - lambda)`` (``weight_scale`` in its metadata), so
that forward Euler at ``dt``, ``v <- v + (dt / tau)(-v + W' x)``, is the family's ``v <-
lambda v + W x``, as Norse's and snnTorch's imports read a LIF (both ignore ``r``). A
population whose leak is 1 is an ``IF``, ``dv/dt = r I`` with ``r = 1 / dt`` (``v <- v +
W x``; Norse adds its input, ignoring ``r``). Biases are 0.

The output layer integrates without spiking. Neither Norse 1.1.0's nor snnTorch's NIR
import runs NIR's integrator (``I``: Norse drops the node), so the graph ends in the
output Affine and its output summed over the steps is the output membrane after the last
step (the metadata's ``readout``): the same logits, since the integrator is linear.

What NIR cannot say is in the metadata: the fixed-point formats, the rounding (of every
membrane after every step, and of the output's sum), the comparison ``>=`` (NIR's ``>``),
the reset by subtraction of the threshold (NIR's neurons reset to ``v_reset``, 0 here: a
consumer that runs the graph resets to 0), the input (direct: the pixel intensity as a
current at every step, P / 2**8 in the integer design; Poisson: a spike with probability
P / 255), the steps, and the readout. docs/model.md gives the agreement of Norse running
the graph as written. Time is in seconds, ``dt`` = the model's ``dt_ms``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tinysnn_dse.core import diet
from tinysnn_dse.core.diet_integer import PIXEL_FRAC, IntDiet


def _real(codes: np.ndarray, frac_bits: int) -> np.ndarray:
    return codes.astype(np.float64) * 2.0**-frac_bits


def build(model: Any, d: IntDiet, formats: diet.Formats, meta: dict[str, Any]) -> Any:
    """The NIR graph of the integer design ``d`` of ``model`` (a ``DietModel``): its
    weights, thresholds and leaks on their grids (the leak to 16 fractional bits)."""
    w = [_real(layer.w, layer.fw) for layer in d.layers]
    th = [float(_real(np.array([layer.th]), layer.ft)[0]) for layer in d.layers[:-1]]
    lam = [layer.lam / 2**diet.LEAK_BITS for layer in d.layers[:-1]]
    fmts = [f.describe() if f is not None else "fp32" for f in formats.weight]
    return build_real(model, w, th, lam, d.timesteps, d.encoding, fmts, meta, 2**PIXEL_FRAC)


def build_real(model: Any, w: list[np.ndarray], th: list[float], lam: list[float],
               steps: int, encoding: diet.Encoding, formats: list[str],
               meta: dict[str, Any], pixel_divisor: int = 255) -> Any:  # fmt: skip
    """The graph of real weights ``w[l]`` [in, out], thresholds and leaks per hidden
    layer (a fixed-point design's values, or an FP32 network's); a direct input is the
    pixel code over ``pixel_divisor`` (256 in the integer design, 255 in FP32)."""
    import nir

    dt_s = float(model.dt_ms) / 1000.0
    depth = len(th)
    nodes: dict[str, Any] = {"input": nir.Input(input_type=np.array([w[0].shape[0]]))}
    edges: list[tuple[str, str]] = []
    prev = "input"
    for k, wk in enumerate(w):
        n = wk.shape[1]
        name = f"w{k}" if k < depth else "w_out"
        scale = 1.0 if k == depth or lam[k] >= 1.0 else 1.0 / (1.0 - lam[k])
        wmeta = {"format": formats[k], "weight_scale": scale}
        nodes[name] = nir.Affine(weight=wk.T * scale, bias=np.zeros(n), metadata=wmeta)
        edges.append((prev, name))
        prev = name
        if k == depth:
            break
        lmeta = {"leak": lam[k], "reset": "subtract v_threshold at the next step (tinysnn)",
                 "threshold": "v >= v_threshold in tinysnn (NIR: v > v_threshold)"}  # fmt: skip
        pop = f"lif{k}"
        v_th = np.full(n, th[k])
        if lam[k] >= 1.0:
            nodes[pop] = nir.IF(r=np.full(n, 1.0 / dt_s), v_threshold=v_th,
                                v_reset=np.zeros(n), metadata=lmeta)  # fmt: skip
        else:
            nodes[pop] = nir.LIF(tau=np.full(n, dt_s / (1.0 - lam[k])), r=np.ones(n),
                                 v_leak=np.zeros(n), v_threshold=v_th, v_reset=np.zeros(n),
                                 metadata=lmeta)  # fmt: skip
        edges.append((name, pop))
        prev = pop
    nodes["output"] = nir.Output(output_type=np.array([w[-1].shape[1]]))
    edges.append((prev, "output"))
    full = {
        **meta,
        "dt_s": dt_s,
        "steps": steps,
        "input": (f"the pixel intensity P / {pixel_divisor} as a current at every step"
                  if encoding == diet.Encoding.DIRECT
                  else "the step's event frame: a spike where the input had an event in "
                  "the step's time bins" if encoding == diet.Encoding.EVENTS
                  else "a spike with probability P / 255 at every step"),
        "pixel_divisor": pixel_divisor,
        "readout": "the output summed over the steps (the output layer's membrane after "
                   "the last step); the largest wins",
    }  # fmt: skip
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=full)


def write(graph: Any, path: Path) -> None:
    import nir

    nir.write(str(path), graph)
