"""Evaluation in torch: logits for a uint8 face array (optionally with test-time augmentation)."""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import torch

from ferkit.models.preprocess import crop_to, ten_crops, to_input


def autocast_for(precision: str, device: torch.device):
    """The autocast context matching a Lightning precision string."""
    if precision.startswith("bf16"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if precision.startswith("16"):
        return torch.autocast(device.type, dtype=torch.float16)
    return nullcontext()


@torch.no_grad()
def predict_logits(
    model: torch.nn.Module,
    images: np.ndarray,
    batch_size: int = 512,
    precision: str = "32-true",
    channels_last: bool = True,
    tta: bool | str = False,
) -> np.ndarray:
    """images: (N, 48, 48) uint8 -> (N, 7) float32 logits of the centre crop the model takes.

    tta: False; "flip" (or True): average with the mirror image; "tencrop": average 4 corners + centre, each mirrored.
    """
    model.eval()
    device = next(model.parameters()).device
    out = []
    for i in range(0, len(images), batch_size):
        x = torch.as_tensor(images[i : i + batch_size]).to(device).unsqueeze(1)  # (B, 1, 48, 48) uint8
        x = to_input(x, model.pretrained_cfg, channels_last)
        size = model.pretrained_cfg["input_size"][-1]
        with autocast_for(precision, device):
            if tta == "tencrop":
                views = ten_crops(x, size)
            else:
                views = [crop_to(x, size)] + ([crop_to(x, size).flip(3)] if tta else [])
            logits = torch.stack([model(v).float() for v in views]).mean(0)
        out.append(logits.cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, 7), np.float32)


def record_predictions(model_path, out, data: str | None = None, commit: str | None = None, tta: str = "flip"):
    """A finished model.pt -> results/runs/<run>/predictions.npz + run.json (ferkit.predictions): single-crop
    logits of every official split in file order, plus `tta` logits of PublicTest and PrivateTest."""
    from ferkit.data import load_fer2013, locate, make_splits
    from ferkit.data.source import data_identity
    from ferkit.hardware import machine_description
    from ferkit.models import count_flops, count_parameters
    from ferkit.models.checkpoint import load_model
    from ferkit.predictions import split_rows, write_run

    model, ckpt = load_model(model_path)
    cfg, summary = ckpt.get("config", {}), ckpt.get("summary", {})
    source = locate(data or cfg.get("data"))
    splits = make_splits(load_fer2013(source), "official")
    parts = {"Training": splits.train, "PublicTest": splits.val, "PrivateTest": splits.test}
    logits = {k: predict_logits(model, p.images) for k, p in parts.items()}
    for k in ("PublicTest", "PrivateTest"):
        logits[f"{k}_tta"] = predict_logits(model, parts[k].images, tta=tta)
    public_acc = float((logits["PublicTest"].argmax(1) == splits.val.labels).mean())
    phases = summary.get("phases", [])
    recipe = {k: v for k, v in cfg.items() if k not in ("data", "out")}
    info = {
        "model": ckpt["model"],
        "model_args": ckpt.get("model_args", {}),
        "parameters": count_parameters(model)["trainable"],
        "mflop": round(2 * count_flops(model) / 1e6, 1),
        "seed": cfg.get("seed"),
        "epochs": sum(p.get("epochs_run", 0) for p in phases),
        "wall_minutes": round(sum(p.get("seconds", 0.0) for p in phases) / 60, 1),
        "machine": summary.get("machine") or machine_description(),
        "git_commit": commit or summary.get("git_commit"),
        "public_accuracy": public_acc,
        "data": data_identity(source)["file"],
        "data_sha256": data_identity(source)["sha256"],
        "training_logits": "in-sample: the final weights on the Training images they were fitted on",
        "tta": tta,
        "recipe": recipe,
    }
    return write_run(out, logits, info, split_rows(splits))
