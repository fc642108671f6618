"""The learning rules (method.md 2), presynaptic traces and weight normalisation, as pure
functions of tensors; tested against hand-computed numbers (tests/core/test_rules.py)."""

from __future__ import annotations

import torch

from tinysnn_dse.core.params import LearningParams

Tensor = torch.Tensor


def presyn_traces(spikes: Tensor, dt_ms: float, tau_ms: float) -> Tensor:
    """Traces of ``spikes`` [B, T, n] (bool) at every step: exp(-(t - t_last) dt / tau), 0 if none.

    Equal to the recursion ``x <- x * exp(-dt/tau); x[s] = 1`` started from zero.
    """
    b, t, n = spikes.shape
    steps = torch.arange(t, device=spikes.device, dtype=torch.float32).view(1, t, 1)
    last = torch.where(spikes, steps, torch.full_like(steps, -1e9).expand(b, t, n))
    last = torch.cummax(last, dim=1).values
    return torch.exp(-(steps - last) * (dt_ms / tau_ms))


def trace_table(steps: int, dt_ms: float, tau_ms: float) -> Tensor:
    """The values a trace of :func:`presyn_traces` takes, by steps since the input's last
    spike: [T] with entry k = exp(-k dt / tau), computed by the same float32 operations,
    so that ``trace_table(...)[t - t_last]`` equals ``presyn_traces(...)[:, t, i]``
    bit for bit (tests/core/test_neuron.py). The compiled per-step rules read traces from
    it lazily instead of building the [T, n] block."""
    k = torch.arange(steps, dtype=torch.float32)
    return torch.exp(-k * (dt_ms / tau_ms))


def traces_at(spikes: Tensor, ends: list[int], dt_ms: float, tau_ms: float) -> Tensor:
    """The rows ``ends`` (ascending steps) of :func:`presyn_traces`, at a fraction of its cost.

    Returns [B, len(ends), n]; the same values as ``presyn_traces(spikes, ...)[:, ends]``.
    """
    b, _, n = spikes.shape
    last = torch.full((b, n), -1e9, device=spikes.device)
    out = []
    start = 0
    for end in ends:
        steps = torch.arange(start, end + 1, device=spikes.device, dtype=torch.float32)
        win = torch.where(spikes[:, start : end + 1], steps.view(1, -1, 1), -1e9)
        last = torch.maximum(last, win.amax(dim=1))
        out.append(torch.exp(-(float(end) - last) * (dt_ms / tau_ms)))
        start = end + 1
    return torch.stack(out, dim=1)


def update_points(steps: int, window: int) -> list[int]:
    """Last step of each update window: the tinySNN rule's update points."""
    return [min(t + window, steps) - 1 for t in range(0, steps, window)]


def normalize(w: Tensor, norm: float, w_max: float) -> Tensor:
    """Rescale each column (one excitatory neuron's inputs) to sum to ``norm``."""
    col = w.sum(dim=0, keepdim=True).clamp_min(1e-12)
    return (w * (norm / col)).clamp_(0.0, w_max)


def pair_update_(
    w: Tensor, s_pre: Tensor, s_post: Tensor, x_pre: Tensor, x_post: Tensor, p: LearningParams
) -> Tensor:
    """DC15 pair STDP for one step, in place on ``w``; traces include this step's spikes.

    ``dw_ij = -eta_pre * s_pre_i * x_post_j + eta_post * x_pre_i * s_post_j``; shapes
    ``s_pre, x_pre`` [n_in], ``s_post, x_post`` [N]. W is clamped to [0, w_max].
    """
    a = torch.stack((s_pre.to(w.dtype), x_pre), dim=1)  # [n_in, 2]
    b = torch.stack((x_post * -p.eta_pre, s_post.to(w.dtype) * p.eta_post), dim=0)  # [2, N]
    return w.addmm_(a, b).clamp_(0.0, p.w_max)


def sl_stdp_cols(wc: Tensor, x_pre: Tensor, p: LearningParams) -> Tensor:
    """SL-STDP new values of the columns ``wc`` [n_in, k] of neurons that just spiked.

    ``dw_ij = eta (x_pre_i - x_tar) * (w_max - w_ij)`` when ``x_pre_i >= x_tar`` (soft-bounded
    potentiation), else ``eta (x_pre_i - x_tar) * w_ij`` (soft-bounded depression).
    """
    d = (x_pre - p.x_tar).unsqueeze(1)
    bound = torch.where(d >= 0, p.w_max - wc, wc)
    return (wc + p.eta_sl * d * bound).clamp_(0.0, p.w_max)


def tinysnn_cols(wc: Tensor, x_pre: Tensor, s_max: float, p: LearningParams) -> Tensor:
    """tinySNN update (paper Eq. 1-2) of the columns ``wc`` [n_in, k] of neurons that fired
    since the previous update point: ``k = s_max / s_th``,
    ``dw_ij = k * eta * x_pre_i * (w_max - w_ij)``."""
    k = s_max / p.s_th
    return (wc + (k * p.eta) * x_pre.unsqueeze(1) * (p.w_max - wc)).clamp_(0.0, p.w_max)
