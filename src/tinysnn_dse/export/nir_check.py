"""The exported NIR graph run by a real consumer: Norse (``norse``, with ``nirtorch``; an
optional extra for tests and docs, never needed by the CLI). docs/model.md ("Export")
gives the measured agreement and each semantic difference.

What Norse 1.1.0's NIR import does with our nodes, and how this check meets it:

- ``nir.LIF`` becomes ``LIFBoxCell``: forward Euler ``v += dt/tau (I + v_leak - v)``,
  firing where ``v > v_th``, reset to 0. It ignores ``r`` and ``v_reset`` (it logs a
  warning for ``r``). So the graph is rewritten to an equivalent one before the import:
  ``r`` folded into the weights of the Linear nodes that feed the population, and the
  population's voltage origin moved to its ``v_reset`` (``v_leak``, ``v_threshold``
  shifted by ``-v_reset``, ``v_reset`` 0). Thresholds are lowered by ``eps`` mV so that
  Norse's ``>`` fires where tinysnn's ``>=`` does on an equal value.
- ``nir.IF`` becomes ``IAFCell`` with ``v_reset`` 0 and an initial potential of 0, which
  cannot hold both our reset and our resting level; ``nir.Delay`` is not imported at all.
  For these two the check uses an ``IAFCell`` with the node's ``v_reset`` and a one-step
  delay cell; Linear and LIF go through Norse's own node import, all in
  ``nirtorch.nir_to_torch`` (:func:`norse_module` says why not ``from_nir``).
- A recurrent edge (lateral inhibition) closes its cycle with a one-step delay in the
  graph executor, which is tinysnn's delay.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch

#: How far below its threshold a Norse neuron fires (mV): turns ``>`` into ``>=``.
EPS_MV = 1e-4


def _fed_by(g: Any, name: str) -> list[str]:
    return [s for s, d in g.edges if d == name]


def rewrite(g: Any, eps: float = EPS_MV) -> Any:
    """An equivalent graph whose LIF and IF nodes say with what Norse reads what Norse's
    import ignores (module docstring)."""
    import nir

    g = copy.deepcopy(g)
    for name, node in list(g.nodes.items()):
        if not isinstance(node, nir.LIF | nir.IF):
            continue
        r = np.asarray(node.r, dtype=np.float64)
        if isinstance(node, nir.IF):  # Norse's IAF adds its input: v += dt r I by Euler
            dt = float(g.metadata.get("dt_s", 1e-3))
            r = r * dt
        for src in _fed_by(g, name):
            lin = g.nodes[src]
            if not isinstance(lin, nir.Linear):
                raise ValueError(f"{src} -> {name}: expected a Linear node")
            g.nodes[src] = nir.Linear(weight=np.asarray(lin.weight) * r[:, None])
        vr = np.asarray(node.v_reset, dtype=np.float64)
        if isinstance(node, nir.LIF):
            g.nodes[name] = nir.LIF(
                tau=node.tau,
                r=np.ones_like(r),
                v_leak=np.asarray(node.v_leak) - vr,
                v_threshold=np.asarray(node.v_threshold) - vr - eps,
                v_reset=np.zeros_like(vr),
            )
        else:
            g.nodes[name] = nir.IF(r=np.ones_like(r), v_threshold=np.asarray(node.v_threshold)
                                   - eps, v_reset=vr)  # fmt: skip
    return g


class _Delay(torch.nn.Module):
    """``nir.Delay`` of one step: this step's output is the previous step's input."""

    def forward(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
        prev = torch.zeros_like(x) if state is None else state
        return prev, x


class _IF(torch.nn.Module):
    """Norse's ``IAFCell`` with the node's reset (and a resting level of 0)."""

    def __init__(self, node: Any) -> None:
        super().__init__()
        from norse.torch.functional.iaf import IAFParameters
        from norse.torch.module.iaf import IAFCell

        def f32(a: Any) -> torch.Tensor:
            return torch.as_tensor(np.asarray(a), dtype=torch.float32)

        self.cell = IAFCell(IAFParameters(v_th=f32(node.v_threshold), v_reset=f32(node.v_reset)))

    def forward(self, x: torch.Tensor, state: Any = None) -> Any:
        return self.cell(x, state)


def norse_module(g: Any) -> torch.nn.Module:
    """The rewritten graph (:func:`rewrite`) as a torch module: Norse's NIR node import
    (``_import_norse_module``, what ``norse.torch.from_nir`` maps each node with) for
    Linear and LIF, the two cells above for IF and Delay, in ``nirtorch.nir_to_torch``'s
    graph executor. ``norse.torch.from_nir`` itself (Norse 1.1.0) runs the graph in the
    deprecated ``nirtorch.load``, which on a recurrent graph returns the lateral Linear's
    output in place of the Output node's on every step the population fires (measured:
    values of -15,077 among the spikes)."""
    import nir
    import nirtorch
    from norse.torch.utils.import_nir import _import_norse_module

    dt = float(g.metadata.get("dt_s", 1e-3))

    def norse_node(n: Any) -> torch.nn.Module:
        return _import_norse_module(n, ignore_warnings=True, dt=dt)

    node_map = {nir.Linear: norse_node, nir.LIF: norse_node, nir.IF: _IF,
                nir.Delay: lambda n: _Delay()}  # fmt: skip
    return nirtorch.nir_to_torch(rewrite(g), node_map)


def run_counts(module: torch.nn.Module, spikes: torch.Tensor) -> torch.Tensor:
    """Spike counts [B, N] of the graph's output for input spikes [B, T, n_in]."""
    x = spikes.to(torch.float32)
    state = None
    total = None
    with torch.no_grad():
        for t in range(x.shape[1]):
            z, state = module(x[:, t], state)
            total = z.clone() if total is None else total + z
    assert total is not None
    return total


def diet_outputs(g: Any, pixels: torch.Tensor, keys: torch.Tensor,
                 reset_subtract: bool = False) -> torch.Tensor:  # fmt: skip
    """The output summed over the steps [B, n_out] of a gradient-trained family's graph
    (``export/diet_nir.py``) run as written by Norse's ``from_nir`` (``reset_subtract``:
    with Norse's own ``reset_method=reset_subtract``, a consumer's option), for pixel codes
    ``pixels`` [B, n_in] and keys ``keys`` [B]: the direct input P / the graph's
    ``pixel_divisor`` at every step, or
    Poisson spikes drawn as the integer datapath draws them (``diet_integer.u24``)."""
    import norse.torch as nt
    from norse.torch.functional.reset import reset_subtract as subtract

    from tinysnn_dse.core import diet_integer

    kw: dict[str, Any] = {"reset_method": subtract} if reset_subtract else {}
    module = nt.from_nir(g, dt=float(g.metadata["dt_s"]), ignore_warnings=True, **kw)
    poisson = "P / 255" in str(g.metadata["input"])
    state = None
    total: Any = 0
    with torch.no_grad():
        for t in range(int(g.metadata["steps"])):
            if poisson:
                u = diet_integer.u24(keys, 4 * t, pixels.shape[1])
                x = (u < pixels * diet_integer.POISSON_SCALE).to(torch.float32)
            else:
                x = pixels.to(torch.float32) / float(g.metadata.get("pixel_divisor", 255))
            y, state = module(x, state)
            total = total + y
    return total  # type: ignore[no-any-return]
