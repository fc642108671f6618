"""Checkpoints: a trained network (``model.pt``: tensors and JSON strings only, loaded
without executing pickled code) with, after an evaluation, its label assignment and
record (``record.json`` beside it); written whole or not at all (:mod:`tinysnn_dse.files`)."""

from __future__ import annotations

import io
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from tinysnn_dse.axes import short_repr
from tinysnn_dse.core.params import quant_from_dict
from tinysnn_dse.errors import CheckpointError, ConfigError
from tinysnn_dse.files import atomic_write, write_files
from tinysnn_dse.runner.evaluation import Evaluation
from tinysnn_dse.runner.family import FAMILIES, ShapeError, family_of, ranges_of
from tinysnn_dse.runner.settings import RunSettings, resolve_device
from tinysnn_dse.runner.training import Trained

CHECKPOINT_FORMAT = "tinysnn-checkpoint-v1"


def _model_json(model: Any) -> str:
    return json.dumps(model.to_dict() if hasattr(model, "to_dict") else asdict(model))


def _payload(trained: Trained) -> dict[str, Any]:
    fam = family_of(trained.model)
    return {
        "format": CHECKPOINT_FORMAT,
        # the STDP family's checkpoints say nothing: every one written before the second
        "family": fam.name,
        **fam.payload(trained),
        "model_json": _model_json(trained.model),
        "trained_with_json": json.dumps(asdict(trained.quant)),
        "settings_json": json.dumps(asdict(trained.settings)),
        "train_seconds": float(trained.train_seconds),
        "train_images": int(trained.train_images),
        "train_ops_json": json.dumps(trained.train_ops),
        "train_measured_json": json.dumps(trained.train_measured),
        "train_quant_json": json.dumps(trained.train_quant),
        "train_backend": trained.train_backend or "",
    }


def _torch_bytes(payload: dict[str, Any]) -> bytes:
    """``payload`` as ``torch.save`` writes it, in memory: written to a file by
    :func:`write_files`, a full disk is an ``OSError`` (torch's own writer says "unexpected
    pos 64 vs 0") and never a truncated checkpoint."""
    buf = io.BytesIO()
    torch.save(payload, buf)
    return buf.getvalue()


def save_trained(path: Path, trained: Trained) -> Path:
    """Write a trained network alone (no labels, no record), atomically; reload with
    :func:`load_checkpoint`. Used to share one FP32 training between PTQ points."""
    return atomic_write(path, _torch_bytes(_payload(trained)))


def save(out_dir: Path, trained: Trained, ev: Evaluation) -> tuple[Path, Path]:
    """Write ``model.pt`` (tensors + JSON strings only) and ``record.json`` atomically,
    replacing those of an earlier run (both or, on a failure, neither)."""
    assigned = {} if ev.assignment is None else {
        "assignment": ev.assignment.labels.cpu(),
        "proportions": ev.assignment.proportions.cpu(),
    }  # fmt: skip
    payload = {**_payload(trained), **assigned, "record_json": json.dumps(ev.record.to_dict())}
    ckpt = out_dir / "model.pt"
    rec = out_dir / "record.json"
    text = json.dumps(ev.record.to_dict(), indent=2, sort_keys=True)
    write_files({ckpt: _torch_bytes(payload), rec: text + "\n"})
    return ckpt, rec


def load_checkpoint(path: Path, device: str = "cpu") -> Trained:
    """Load a checkpoint without executing pickled code (``weights_only=True``); one whose
    weights or thresholds are not all finite (NaN, inf) is refused."""
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        p = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a bad file
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"{path}: not a readable tinysnn checkpoint ({first[:160]})"
        ) from None
    if not isinstance(p, dict) or p.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a tinysnn checkpoint (format {CHECKPOINT_FORMAT})")
    fam = FAMILIES.get(str(p.get("family", "stdp")))
    if fam is None:
        raise CheckpointError(f"{path}: a checkpoint of an unknown model family "
                              f"{short_repr(p.get('family'))}")  # fmt: skip
    try:
        quant = quant_from_dict(json.loads(p["trained_with_json"]))
        settings = RunSettings(**json.loads(p["settings_json"]))
        dev = resolve_device(device)
        net, model = fam.restore(p, dev)
        ranges = ranges_of(p)
    except ShapeError as e:
        raise CheckpointError(f"{path}: {e}") from None
    except (KeyError, TypeError, ValueError, AttributeError, ConfigError) as e:
        raise CheckpointError(f"{path}: incomplete checkpoint ({e})") from None
    tensors = [("weights", w) for w in (net.w if isinstance(net.w, list) else [net.w])]
    tensors += [("thresholds", t) for t in (net.theta if isinstance(net.theta, list)
                                             else [net.theta])]  # fmt: skip
    tensors += [("leaks", t) for t in getattr(net, "leak", [])]
    bad = list(dict.fromkeys(n for n, t in tensors if not bool(torch.isfinite(t).all())))
    if bad:
        raise CheckpointError(
            f"{path}: non-finite {' and '.join(bad)} (NaN or inf); not a usable network"
        )
    try:
        source = json.loads(p.get("record_json", "{}"))["config"]["run"].get("data_source")
    except (KeyError, TypeError, ValueError):
        source = None
    try:
        design_quant = quant_from_dict(json.loads(p["record_json"])["config"]["quant"])
    except (KeyError, TypeError, ValueError, ConfigError):
        design_quant = None
    return Trained(
        net,
        model,
        quant,
        settings,
        float(p["train_seconds"]),
        int(p["train_images"]),
        source,
        train_ops=json.loads(p.get("train_ops_json", "null")),
        train_measured=json.loads(p.get("train_measured_json", "null")),
        train_quant=json.loads(p.get("train_quant_json", "null")),
        train_backend=p.get("train_backend") or None,
        design_quant=design_quant,
        ranges=ranges,
    )
