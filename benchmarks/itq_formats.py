"""The ITQ formats of the paper grid's design batches, as `explore` sets them (imported by
batch_profile.py and kernel_split.py, not run on its own)."""

import torch

from tinysnn_dse.core import sim
from tinysnn_dse.core.params import ModelConfig, QuantSpec, validate_quant
from tinysnn_dse.core.quant import Quantizers, with_ranges


def itq_formats(
    net: sim.Net, cfg: ModelConfig, x: torch.Tensor, rounding: str, wbits: list[int], label: str
) -> list[Quantizers]:
    """ITQ points of weight bits ``wbits`` x neuron (Vmem, Vth) bits {32, 16, 8} with
    ``rounding``, their integer bits from the FP32 network ``net``'s ranges observed on
    the images ``x`` (as explore takes them from the FP32 point's)."""
    ranges = sim.observe_ranges(net, x.float(), cfg, torch.Generator().manual_seed(1), label)
    specs = [
        with_ranges(
            validate_quant(QuantSpec(scheme="itq", rounding=rounding, weight_bits=wb,
                                     vmem_bits=nb, vth_bits=nb)),
            ranges, cfg,
        )
        for wb in wbits for nb in (32, 16, 8)
    ]  # fmt: skip
    return [Quantizers.from_spec(s) for s in specs]
