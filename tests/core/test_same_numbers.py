"""What a speed-up may not change: the trained numbers of a fixed seed.

The digests below were computed at 169a432, before issue 30's kernel changes (lazy
presynaptic traces in the per-step rules, W updated in place across re-presentations,
cached constants). Each is the SHA-256 of a network's weights and thresholds (float32
bytes) after learning 40 digits images from one seed (146-848 presentations: boosted
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
from tinysnn_dse.data import load

DIGESTS = {
    "baseline": "1926e0b3674f069bb4888e9a77056a9efaa4b767ac0c9b12b6ca7ef10ddd5eb1",
    "sl-stdp": "687983c7ca13153418bd4cc67911efa03c93e33fd1e914513ab5dac6cfbfb99c",
    "tinysnn": "f036d17186e3062d08cc18bb7f2a4c4490d5c51592f866fc9ca6125c55e83a37",
    "tinysnn-itq-nearest": "b809c01d2ded446f5cde1b1fd61fda5b49a67e225464354e5f1f7cc9076bbc3d",
    "tinysnn-itq-stochastic": "592b5be59839dff3028544eab801abcefddf4a955b0e15e6ad947c241b5c4e6b",
    "batch": "4fe48c1321836536dd682695d82efd1959bef3c1e26c8a8d021d59a6c8079e9a",
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
    return torch.from_numpy(load("digits", None).train_images[:40].copy()).float() / 255.0


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
