"""Evaluation in torch: logits for a uint8 face array (optionally with test-time augmentation)."""

from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path

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
    return torch.cat(out).numpy() if out else np.zeros((0, len(model.pretrained_cfg["labels"])), np.float32)


def _check_fer2013_classes(model, path) -> None:
    """Prediction files hold FER2013's seven classes per row of the shared file; a FER+ model has eight."""
    from ferkit.errors import PredictionFileError
    from ferkit.labels import CLASS_NAMES

    labels = tuple(model.pretrained_cfg["labels"])
    if labels != tuple(CLASS_NAMES):
        raise PredictionFileError(
            f"{path}: predicts {len(labels)} classes ({', '.join(labels)}); prediction files hold FER2013's seven "
            "(a labels=ferplus model is scored with `ferkit evaluate`)"
        )


def _trained_on(cfg: dict, machine: dict | None) -> dict | None:
    """Where it trained; record_run fills in this machine when unknown. Runs trained on a GPU before the training
    loop named it carry only the recipe's accelerator: say so rather than let the CPU alone stand for it."""
    if machine is not None and "gpu" not in machine and cfg.get("accelerator") in ("gpu", "cuda"):
        return machine | {"gpu": "a CUDA GPU (not named by this run's version of the training loop)"}
    return machine


def _run_info(model, ckpts: list[dict], commit: str | None, tta: str, training_logits: str) -> dict:
    """run.json's description of a model trained by `ckpts` (one run, or the k folds of one partition: epochs
    per fold, minutes summed); the recipe is the first's."""
    from ferkit.models import count_macs, count_parameters

    cfg, summary = ckpts[0].get("config", {}), ckpts[0].get("summary", {})
    phases = [p for c in ckpts for p in c.get("summary", {}).get("phases", [])]
    return {
        "model": ckpts[0]["model"],
        "model_args": ckpts[0].get("model_args", {}),
        "parameters": count_parameters(model)["trainable"],
        "mflop": round(2 * count_macs(model) / 1e6, 1),
        "seed": cfg.get("seed"),
        "epochs": sum(p.get("epochs_run", 0) for p in phases) // len(ckpts),
        "wall_minutes": round(sum(p.get("seconds", 0.0) for p in phases) / 60, 1),
        "machine": _trained_on(cfg, summary.get("machine")),
        "git_commit": commit or summary.get("git_commit"),
        "training_logits": training_logits,
        "tta": tta,
        "recipe": {k: v for k, v in cfg.items() if k not in ("data", "out")},
    }


def record_predictions(
    model_path, out, data: str | None = None, commit: str | None = None, tta: str = "flip", device: str = "cpu"
):
    """A finished model.pt -> results/runs/<run>/predictions.npz + run.json (ferkit.predictions): single-crop
    logits of every official split in file order, plus `tta` logits of PublicTest and PrivateTest. device: where
    the logits are computed ("cuda" on a lent GPU)."""
    from ferkit.data.source import run_data
    from ferkit.models.checkpoint import load_model
    from ferkit.predictions import record_run

    model, ckpt = load_model(model_path)
    _check_fer2013_classes(model, model_path)
    model = model.to(device)
    cfg = ckpt.get("config", {})
    info = _run_info(
        model, [ckpt], commit, tta, "in-sample: the final weights on the Training images they were fitted on"
    )
    if cfg.get("folds"):  # a k-fold teacher alone: its Training logits are in-sample but for its own fold
        info["training_logits"] = (
            f"fold {cfg['fold']} of {cfg['folds']} (fold_seed {cfg.get('fold_seed', 0)}): that fold's rows out of "
            "sample, the rest in-sample; `ferkit predictions` of all the folds' models writes the out-of-fold run"
        )
    return record_run(
        out,
        run_data(data, ckpt),
        lambda _, images: predict_logits(model, images),
        lambda _, images: predict_logits(model, images, tta=tta),
        info,
    )


def record_oof_predictions(model_paths, out, data: str | None = None, commit: str | None = None, tta: str = "flip"):
    """The k models of one k-fold partition -> one run's prediction files whose Training logits are out of fold:
    each Training row is predicted by the model that did not train on it; PublicTest and PrivateTest by the
    models' ensemble (mean probability). The folds must be 0..k-1 of the same folds and fold_seed, once each."""
    from ferkit.data import kfold_assignment, load_fer2013, make_splits
    from ferkit.data.source import run_data
    from ferkit.errors import PredictionFileError
    from ferkit.models.checkpoint import load_model
    from ferkit.predictions import ensemble_logits, record_run

    loaded = [load_model(p) for p in model_paths]
    for (m, _), p in zip(loaded, model_paths, strict=True):
        _check_fer2013_classes(m, p)
    configs = [ckpt.get("config", {}) for _, ckpt in loaded]
    partition = {(c.get("folds"), c.get("fold_seed", 0)) for c in configs}
    k = configs[0].get("folds") or 0
    if len(partition) != 1 or k < 2 or sorted(c.get("fold") for c in configs) != list(range(k)):
        got = ", ".join(f"fold {c.get('fold')} of {c.get('folds')} (seed {c.get('fold_seed', 0)})" for c in configs)
        raise PredictionFileError(f"out-of-fold predictions need folds 0..k-1 of one partition, once each; got {got}")
    models = {c["fold"]: m for (m, _), c in zip(loaded, configs, strict=True)}
    source = run_data(data, loaded[0][1])
    fold_of = kfold_assignment(make_splits(load_fer2013(source), "official").train.images, k, configs[0]["fold_seed"])

    def logits_of(usage: str, images: np.ndarray, view: str | bool = False) -> np.ndarray:
        if usage != "Training":
            return ensemble_logits([predict_logits(m, images, tta=view) for m in models.values()])
        logits = np.zeros((len(images), len(models[0].pretrained_cfg["labels"])), np.float32)
        for f, m in models.items():
            logits[fold_of == f] = predict_logits(m, images[fold_of == f], tta=view)
        return logits

    why = (
        f"out-of-fold: {k} folds (fold_seed {configs[0]['fold_seed']}, duplicate groups whole); each Training row "
        "predicted by the fold model that did not train on it; test splits by the folds' ensemble"
    )
    info = _run_info(models[0], [ckpt for _, ckpt in loaded], commit, tta, why) | {"folds": k}
    info["recipe"].pop("fold", None)
    return record_run(out, source, logits_of, lambda usage, images: logits_of(usage, images, tta), info)


def read_metrics(phase_dir: Path) -> list[dict]:
    """Per-epoch rows of a phase's metrics.csv (Lightning logs train and val on separate rows)."""
    import csv

    # metrics.N.csv are the parts written before each resume, oldest first; metrics.csv is the latest.
    parts = [*sorted(phase_dir.glob("metrics.*.csv"), key=lambda p: int(p.suffixes[0][1:])), phase_dir / "metrics.csv"]
    by_epoch: dict[int, dict] = {}
    for path in (p for p in parts if p.exists()):
        with path.open() as f:
            for row in csv.DictReader(f):
                if row.get("epoch"):
                    merged = by_epoch.setdefault(int(row["epoch"]), {"epoch": row["epoch"]})
                    merged.update({k: v for k, v in row.items() if v not in ("", None)})
    return [by_epoch[e] for e in sorted(by_epoch)]


def ensemble_of_models(paths: list[str], images: np.ndarray, precision: str, tta) -> np.ndarray:
    """Log of the members' mean probability: an ensemble averages probabilities, then reads the argmax."""
    from ferkit.metrics import softmax
    from ferkit.models.checkpoint import load_model

    probs = [
        softmax(predict_logits(load_model(p)[0], images, precision=precision, tta=tta).astype(np.float64))
        for p in paths
    ]
    return np.log(np.clip(np.mean(probs, axis=0), 1e-12, None))


def evaluate_models(
    models: list[str],
    split: str = "val",
    protocol: str | None = None,
    data: str | None = None,
    tta: str | None = None,
    precision: str = "32-true",
    out: str | None = None,
) -> tuple[dict, Path, str]:
    """One model or an ensemble (mean probability) on PublicTest (`val`) or PrivateTest (`test`): the report with
    its "unseen" figure, report.json / report.md, the confusion matrix and the training curves in `out`.
    Returns (report, out folder, the Markdown text)."""
    from ferkit import plots
    from ferkit.data import FERPLUS_EMOTIONS, ferplus_labelled, load_fer2013, make_splits, with_votes
    from ferkit.data.quality import unseen_mask
    from ferkit.data.source import run_data
    from ferkit.metrics import classification_report, report_markdown, subset_summary
    from ferkit.models.checkpoint import load_model

    first, ckpt = load_model(models[0])
    config = ckpt.get("config", {})
    protocol = protocol or config.get("split", "official")
    ds = load_fer2013(run_data(data, ckpt))
    names = tuple(first.pretrained_cfg["labels"])
    reference = None  # the images the "unseen" figure excludes copies of: the split's training part
    if names == FERPLUS_EMOTIONS:  # a model of FER+'s eight classes is scored on FER+'s majority-rule test sets
        reference = ds.subset("Training").images  # all of Training, also the images FER+'s rules leave out
        ds = ferplus_labelled(with_votes(ds, config.get("ferplus")))
        usage_note = " (FER+ 8 classes, majority rule)"
    else:
        usage_note = ""
    splits = make_splits(ds, protocol, seed=config.get("seed", 42))
    part = {"val": splits.val, "test": splits.test}[split]
    official = {"val": "PublicTest", "test": "PrivateTest"}
    usage = (official[split] if protocol == "official" else f"{protocol} {split}") + usage_note
    logits = ensemble_of_models(models, part.images, precision, tta or False)
    report = classification_report(logits, part.labels, names)
    reference = splits.train.images if reference is None else reference
    report["unseen"] = subset_summary(logits, part.labels, unseen_mask(part.images, reference), names)
    report.update({"models": models, "protocol": protocol, "split": split, "usage": usage, "tta": tta})
    run_dir = Path(models[0]).parent
    name = f"eval-{split}{'-' + tta if tta else ''}{'-ensemble' if len(models) > 1 else ''}"
    folder = Path(out or run_dir / name)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(json.dumps(report, indent=2))
    who = run_dir.name if len(models) == 1 else f"ensemble of {len(models)}"
    title = f"{who}: {usage}{f' ({tta} TTA)' if tta else ''}"
    text = report_markdown(report, title)
    (folder / "report.md").write_text(text)
    plots.confusion_figure(np.asarray(report["confusion"]), folder / "confusion.png", title, names)
    phases = [(d.name.split("-", 1)[-1], read_metrics(d)) for d in sorted(run_dir.glob("[0-9]*-*")) if d.is_dir()]
    if len(models) == 1 and any(rows for _, rows in phases):
        plots.training_curves(phases, folder / "training_curves.png")
    return report, folder, text
