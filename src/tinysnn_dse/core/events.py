"""Event counts of a learning presentation (the modelled energy's input, docs/energy.md)."""

from __future__ import annotations

from tinysnn_dse.core.energy import OpCounts
from tinysnn_dse.core.modes import Rule
from tinysnn_dse.core.neuron import consts
from tinysnn_dse.core.params import ModelConfig
from tinysnn_dse.core.rules import update_points


def count_learning(
    stats: list[OpCounts],
    n_pre: int,
    n_post: list[int],
    cfg: ModelConfig,
    n_pruned: int = 0,
    fan_in: int | None = None,
) -> None:
    """Add one learning presentation's events to each of ``stats`` (points that saw the
    same ``n_pre`` input spikes and fired ``n_post`` excitatory spikes each); the tinySNN
    rule counts its own synapse updates. A pruned network (core/prune.py): ``n_pruned``
    of the input spikes' synapses are pruned, and each neuron retains ``fan_in`` inputs;
    pruned synapses are neither read nor updated."""
    fan_in = cfg.n_in if fan_in is None else fan_in
    t_steps = cfg.encoding.steps
    if cfg.rule == Rule.PAIR:
        traces = t_steps * (cfg.n_in + cfg.n_exc)
    elif cfg.rule == Rule.SL_STDP:
        traces = t_steps * cfg.n_in
    else:  # traces read only at the update points
        traces = len(update_points(t_steps, consts(cfg).window)) * cfg.n_in
    for st, post in zip(stats, n_post, strict=True):
        st.presentations += 1
        st.steps += t_steps
        st.input_spikes += n_pre
        st.pruned_events += n_pruned
        st.exc_spikes += post
        st.trace_updates += traces
        if cfg.rule == Rule.PAIR:  # depression row per input spike, potentiation column per output
            st.synapse_updates += n_pre * cfg.n_exc - n_pruned + post * fan_in
        elif cfg.rule == Rule.SL_STDP:
            st.synapse_updates += post * fan_in
