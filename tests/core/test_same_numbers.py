"""What a speed-up may not change: the trained numbers of a fixed seed.

The digests below were computed at 169a432, before issue 30's kernel changes (lazy
presynaptic traces in the per-step rules, W updated in place across re-presentations,
cached constants). Each is the SHA-256 of a network's weights and thresholds (float32
bytes) after learning 40 images from one seed (100-669 presentations: boosted
re-presentations included), and of each image's spike counts of its last presentation.
The fields of a record that follow from these (accuracy, labels, spike and update
counts, energy estimates) stay identical with them; measured times and joules do not.
A change that moves any bit of these fails here; one that means to change them (new
arithmetic) updates the digest and says why in its commit.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from tinysnn_dse.core import sim
from tinysnn_dse.core.energy import OpCounts
from tinysnn_dse.core.params import QuantSpec, preset, validate_quant
from tinysnn_dse.core.quant import Quantizers

DIGESTS = {
    "baseline": "8a05af30bb1e88abe3a348e9ee738cc6c1204103359c9e1de5c7864a9613b977",
    "sl-stdp": "df45de6a8adf898608896b2e6457cae22ec4c71f6b694af17c06844b15c9d59c",
    "tinysnn": "b07556ffbdf4b0e87b48695440a4e9dc3f6a5ee01297e72d7c6dbfbfa0f8eef1",
    "tinysnn-itq-nearest": "67f4c565f7173b5297838894f4377012246992f09b99b7db21c351d7653573c1",
    "tinysnn-itq-stochastic": "c9a2fa6a63ce66fe36f755638d9de87bcbe61b4977077850a6bba7254ec2ba90",
    "batch": "48efa2e16de0c7fdee0dacfeb2a84b60823292f0983fba4f5d04d24202c90307",
}
ROUNDINGS = ("truncate", "nearest", "stochastic")


def itq(rounding: str) -> Quantizers:
    spec = QuantSpec(scheme="itq", rounding=rounding, weight_bits=8, vmem_bits=16, vth_bits=16)
    return Quantizers.from_spec(validate_quant(spec))


def digest(name: str) -> tuple[str, int]:
    """(the digest, presentations) of ``name``'s 40 images."""
    if name == "batch":
        return batch_digest()
    model = name.split("-itq")[0]
    cfg = preset(model, 64, 30)
    g = torch.Generator().manual_seed(0)
    net = sim.init_net(cfg, g)
    qz = Quantizers.fp32()
    if "-itq-" in name:
        qz = itq(name.split("-itq-")[1])
        net = sim.quantize_net(net, cfg, qz, g)
    h = hashlib.sha256()
    stats = OpCounts()
    for x in images():
        net, counts = sim.train_sample(net, x, cfg, qz, g, stats=stats)
        h.update(counts.numpy().astype(np.float32).tobytes())
    h.update(net.w.numpy().astype(np.float32).tobytes())
    h.update(net.theta.numpy().astype(np.float32).tobytes())
    return h.hexdigest(), stats.presentations


def images() -> torch.Tensor:
    """40 images of 64 inputs, half of them dark (a tests/core test reads no data set)."""
    x = torch.rand(40, 64, generator=torch.Generator().manual_seed(7))
    return torch.where(x < 0.5, 0.0, x)


def batch_digest() -> tuple[str, int]:
    """Three ITQ points (one per rounding) trained together as a design batch."""
    cfg = preset("tinysnn", 64, 30)
    g = torch.Generator().manual_seed(0)
    net = sim.init_net(cfg, g)
    qzs = [itq(r) for r in ROUNDINGS]
    batch = sim.DesignBatch([sim.quantize_net(net, cfg, q, g) for q in qzs], cfg, qzs)
    stats = [OpCounts() for _ in qzs]
    h = hashlib.sha256()
    for x in images():
        h.update(batch.train_sample(x, g, stats).numpy().astype(np.float32).tobytes())
    for n in batch.nets():
        h.update(n.w.numpy().astype(np.float32).tobytes())
        h.update(n.theta.numpy().astype(np.float32).tobytes())
    return h.hexdigest(), sum(st.presentations for st in stats)


@pytest.mark.parametrize("name", sorted(DIGESTS))
def test_learning_computes_the_numbers_it_computed_before(name: str) -> None:
    got, presentations = digest(name)
    assert presentations > (120 if name == "batch" else 40)  # boosted re-presentations too
    assert got == DIGESTS[name]
