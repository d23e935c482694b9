"""Training: a recipe is a list of phases, each one Lightning fit; every phase checkpoints and resumes."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch

from ferkit.atomic import write_atomically, write_text_atomically
from ferkit.data import FERDataset, Splits, holdout_without_shared_images
from ferkit.errors import ConfigError, RunDirBusy
from ferkit.hardware import cpu_has_native_bf16, machine_description
from ferkit.metrics import classification_report
from ferkit.models import count_parameters, create_model
from ferkit.models.checkpoint import load_checkpoint, load_model, save_model
from ferkit.models.predict import predict_logits
from ferkit.training.batches import make_loader
from ferkit.training.config import Phase, TrainConfig, to_dict


def _data_identity(cfg: TrainConfig) -> dict | None:
    """The trained-on file's name and sha256: later commands that fall back to the recipe's `data` path check that
    it still holds this file (ferkit.data.source.run_data). None when the splits came from elsewhere (tests)."""
    from ferkit.data import locate
    from ferkit.data.source import data_identity
    from ferkit.errors import FerkitError

    try:
        return data_identity(locate(cfg.data))
    except FerkitError:  # not found, or not readable as FER2013
        return None


def _accelerator(cfg: TrainConfig) -> dict:
    """{"gpu": its name} when the run trains on a GPU (the CPU description alone would misstate its minutes)."""
    if torch.cuda.is_available() and cfg.accelerator in ("auto", "gpu", "cuda"):
        return {"gpu": torch.cuda.get_device_name(0)}
    return {}


def resolve_precision(cfg: TrainConfig) -> str:
    """bf16-mixed where the hardware runs bf16 natively (AMX/AVX512-BF16 CPUs, Ampere+ GPUs), else fp32."""
    if cfg.precision != "auto":
        return cfg.precision
    if torch.cuda.is_available() and cfg.accelerator in ("auto", "gpu", "cuda"):
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "bf16-mixed" if cpu_has_native_bf16() else "32-true"


@dataclass
class PhaseData:
    train: tuple[np.ndarray, np.ndarray]  # (N, 48, 48) uint8, (N,) int64
    val: tuple[np.ndarray, np.ndarray]
    note: dict
    extra: np.ndarray | None = None  # (N, 7) per-image targets of the training images (soft labels or logits)


def soft_targets(cfg: TrainConfig, splits: Splits) -> np.ndarray | None:
    """(N, 7) or (N, 14) per-Training-image targets the recipe asks for, aligned with splits.train, or None.

    teacher_logits: the committed runs' Training logits, ensembled (log of the mean probability), checked to be
    predictions of this very data file. ferplus_weight: one-hot labels mixed with the FER+ vote shares
    (splits.train must carry votes: ferkit.data.join_ferplus); only Training rows' votes are ever used.
    Both: (N, 14), the teachers' logits then the mixed label (LogitDistillModule's hard-label term uses it).
    """
    if cfg.labels == "ferplus":  # FER+'s eight classes: only the votes can soften them (no 7-class teacher)
        from ferkit.data import ferplus_targets

        w = cfg.ferplus_weight
        return ferplus_targets(splits.train.labels, splits.train.votes, w) if w > 0 else None
    teachers = _teacher_logits(cfg, splits) if cfg.teacher_logits else None
    mixed = None
    if cfg.ferplus_weight > 0:
        from ferkit.data import mixed_targets

        train = splits.train
        if train.votes is None:
            raise ValueError("ferplus_weight needs FER+ votes joined to the data (ferkit.data.join_ferplus)")
        mixed = mixed_targets(train.labels, train.votes, train.votes_usable, cfg.ferplus_weight)
    if teachers is not None and mixed is not None:
        return np.concatenate([teachers, mixed], 1)  # (N, 7 + 7)
    return teachers if teachers is not None else mixed


def _teacher_logits(cfg: TrainConfig, splits: Splits) -> np.ndarray:
    """(N, 7) float32: the committed runs' Training logits, ensembled, refused if made on another data file."""
    from ferkit.data import locate
    from ferkit.data.source import data_identity
    from ferkit.predictions import ensemble_logits, read_runs

    if cfg.split != "official":
        raise ValueError("teacher_logits are per Training row: they need split=official")
    runs = read_runs(cfg.teacher_logits, data_identity(locate(cfg.data))["sha256"], splits)
    return ensemble_logits([r.logits["Training"] for r in runs]).astype(np.float32)


def mine_hard_examples(model: torch.nn.Module, images: np.ndarray, labels: np.ndarray, precision: str) -> np.ndarray:
    """Indices of the training images the model gets wrong (plain eval, no augmentation).

    The notebook paired predictions on x_test with x_train by index — a bug; this mines the training set itself.
    """
    preds = predict_logits(model, images, precision=precision).argmax(1)
    return np.flatnonzero(preds != labels)


def phase_data(
    phase: Phase, splits: Splits, model, cfg: TrainConfig, precision: str, targets: np.ndarray | None = None
) -> PhaseData:
    train, val = splits.train, splits.val
    if phase.data == "train":
        return PhaseData((train.images, train.labels), (val.images, val.labels), {}, targets)
    if phase.data != "hard":
        raise ValueError(f"phase {phase.name}: data must be 'train' or 'hard', not {phase.data!r}")
    hard = mine_hard_examples(model, train.images, train.labels, precision)
    if len(hard) < 2:  # nothing left to learn from: the phase is skipped, and says so
        return PhaseData((train.images[:0], train.labels[:0]), (val.images, val.labels), {"hard_examples": len(hard)})
    fit_pos, val_pos = holdout_without_shared_images(train.images[hard], phase.hard_val_fraction, cfg.seed)
    fit_idx, val_idx = hard[fit_pos], hard[val_pos]
    note = {"hard_examples": len(hard), "hard_train": len(fit_idx), "hard_val": len(val_idx)}
    return PhaseData(
        (train.images[fit_idx], train.labels[fit_idx]),
        (train.images[val_idx], train.labels[val_idx]),
        note,
        None if targets is None else targets[fit_idx],
    )


RESUME_CKPT = "resume.ckpt"


def resume_checkpoint(ckpt_dir: Path) -> Path | None:
    """The newest resume point of a phase: resume.ckpt (every epoch) or, from runs of older versions, last.ckpt."""
    found = [p for p in (ckpt_dir / RESUME_CKPT, ckpt_dir / "last.ckpt") if p.exists()]
    return max(found, key=lambda p: p.stat().st_mtime_ns) if found else None


def _trainer(cfg: TrainConfig, phase: Phase, phase_dir: Path, precision: str):
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    from ferkit.training.callbacks import AtomicCheckpointIO, EpochLine, PhaseClock

    ckpt_dir = phase_dir / "checkpoints"
    callbacks = [
        # best.ckpt is the phase's result. The resume point is written after every epoch: save_last=True would
        # write last.ckpt only alongside a new best (Lightning 2.6), and a resumed run would replay epochs.
        ModelCheckpoint(dirpath=ckpt_dir, filename="best", monitor=cfg.monitor, mode="max"),
        ModelCheckpoint(dirpath=ckpt_dir, filename=RESUME_CKPT.removesuffix(".ckpt"), enable_version_counter=False),
        LearningRateMonitor(logging_interval="epoch"),
        PhaseClock(),
    ]
    if cfg.ema_decay:
        from lightning.pytorch.callbacks import WeightAveraging
        from torch.optim.swa_utils import get_ema_multi_avg_fn

        callbacks.append(WeightAveraging(multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay)))
    if phase.early_stop_patience is not None:
        callbacks.append(EarlyStopping(monitor=cfg.monitor, mode="max", patience=phase.early_stop_patience))
    interactive = sys.stderr.isatty()
    if not interactive:
        callbacks.append(EpochLine(phase.name))
    else:
        from lightning.pytorch.callbacks import RichProgressBar

        callbacks.append(RichProgressBar())
    return L.Trainer(
        default_root_dir=phase_dir,
        max_epochs=phase.epochs,
        accelerator=cfg.accelerator,
        devices=cfg.devices,
        num_nodes=cfg.num_nodes,
        strategy=cfg.strategy,
        precision=precision,
        callbacks=callbacks,
        plugins=[AtomicCheckpointIO()],
        logger=CSVLogger(save_dir=phase_dir.parent, name=phase_dir.name, version=""),
        use_distributed_sampler=False,  # our sampler shards itself, keeping the seeded order per epoch
        enable_progress_bar=interactive,
        enable_model_summary=False,
        deterministic=False,
        log_every_n_steps=50,
    )


def fit_phase(model, cfg: TrainConfig, phase: Phase, data: PhaseData, phase_dir: Path, precision: str) -> dict:
    """One phase: fit (resuming from its newest resume point), then keep the weights of its best validation epoch."""
    from ferkit.training.callbacks import PhaseClock
    from ferkit.training.modules import DistillModule, FERModule, LogitDistillModule, SelfDistillModule

    if cfg.teacher_logits:
        module = LogitDistillModule(model.train(), cfg, phase)
    elif cfg.teachers:
        teachers = [load_model(t)[0] for t in cfg.teachers]
        module = DistillModule(model.train(), cfg, phase, teachers)
    elif cfg.self_distill:
        module = SelfDistillModule(model.train(), cfg, phase, torch.as_tensor(data.train[1]))
    else:
        module = FERModule(model.train(), cfg, phase)
    if cfg.compile:
        module.model.compile()
    trainer = _trainer(cfg, phase, phase_dir, precision)
    rank, world = trainer.global_rank, trainer.world_size
    train_loader = make_loader(
        *data.train, cfg.batch_size, True, cfg.seed, rank, world, extra=data.extra, with_index=cfg.self_distill > 0
    )
    val_loader = make_loader(*data.val, 512, False, cfg.seed)
    resume = resume_checkpoint(phase_dir / "checkpoints")
    _keep_old_metrics(phase_dir)
    trainer.fit(module, train_loader, val_loader, ckpt_path=str(resume) if resume else None)
    best = phase_dir / "checkpoints" / "best.ckpt"
    if best.exists():
        state = load_checkpoint(best)["state_dict"]
        model.load_state_dict({k.removeprefix("model.").replace("_orig_mod.", ""): v for k, v in state.items()})
    clock = next(c for c in trainer.callbacks if isinstance(c, PhaseClock))  # training time over every resume
    return {"epochs_run": trainer.current_epoch, "seconds": round(clock.seconds, 1), "rank": rank}


def _keep_old_metrics(phase_dir: Path) -> None:
    """Lightning's CSVLogger overwrites metrics.csv on resume: move the earlier part aside (read back merged)."""
    current = phase_dir / "metrics.csv"
    if current.exists():
        current.rename(phase_dir / f"metrics.{len(list(phase_dir.glob('metrics.*.csv')))}.csv")


def _evaluate(model, ds: FERDataset, precision: str) -> dict:
    r = classification_report(predict_logits(model, ds.images, precision=precision), ds.labels, ds.classes)
    return {"accuracy": r["accuracy"], "macro_f1": r["macro_f1"], "nll": r["nll"]}


def train(cfg: TrainConfig, splits: Splits, run_dir: Path, targets: np.ndarray | None = None) -> dict:
    """Run every phase of the recipe in order; a finished phase (done.json) is skipped on a rerun.

    targets: (N, 7) per-Training-image soft targets (`soft_targets`), aligned with splits.train."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with run_lock(run_dir):
        return _train(cfg, splits, run_dir, targets)


def _train(cfg: TrainConfig, splits: Splits, run_dir: Path, targets: np.ndarray | None) -> dict:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    precision = resolve_precision(cfg)
    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model, **cfg.model_args)
    if cfg.init:
        _load_init(model, cfg)
    elif hasattr(model, "init_whitening"):
        _init_whitening(model, splits.train.images)
    if cfg.qat:
        from ferkit.data.calibration import calibration_faces
        from ferkit.training import qat

        qat.prepare(model, calibration_faces(splits.train.images, splits.train.labels))
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    run_dir.mkdir(parents=True, exist_ok=True)
    summary = {
        "config": to_dict(cfg),
        "precision": precision,
        "parameters": count_parameters(model),
        "git_commit": _git_commit(),
        "machine": machine_description() | _accelerator(cfg),
        "data": _data_identity(cfg),
        "phases": [],
    }
    rank = 0
    for i, phase in enumerate(cfg.phases):
        phase_dir = run_dir / f"{i}-{phase.name}"
        done = phase_dir / "done.json"
        if done.exists():
            model.load_state_dict(load_checkpoint(phase_dir / "weights.pt"))
            summary["phases"].append(json.loads(done.read_text()))
            continue
        data = phase_data(phase, splits, model, cfg, precision, targets)
        if len(data.train[0]) == 0:
            fitted = {"epochs_run": 0, "seconds": 0.0, "rank": rank, "skipped": "no training images for this phase"}
        else:
            fitted = fit_phase(model, cfg, phase, data, phase_dir, precision)
        result = {"phase": phase.name, **data.note, **fitted}
        model.cpu()
        result["val"] = _evaluate(model, splits.val, precision)
        rank = result.pop("rank")
        if rank == 0:
            phase_dir.mkdir(parents=True, exist_ok=True)
            write_atomically(phase_dir / "weights.pt", partial(torch.save, model.state_dict()))
            write_text_atomically(done, json.dumps(result, indent=2))
        summary["phases"].append(result)
    if cfg.qat:
        qat.finalize(model)  # weights on their int8 grid, the registry's structure back
        summary["val_after_qat"] = _evaluate(model, splits.val, precision)
    if rank == 0:  # under DDP every rank trains; one writes
        save_model(model, to_dict(cfg), summary, run_dir / "model.pt")
        write_text_atomically(run_dir / "summary.json", json.dumps(summary, indent=2))
    return summary


def _init_whitening(model: torch.nn.Module, images: np.ndarray, n: int = 5000) -> None:
    """A data-dependent first layer (FastFer) from the centre crops of the first n Training images, normalised by
    the model's contract. On resume the checkpoint's weights replace it, so a rerun trains the same."""
    from ferkit.models.preprocess import crop_to, to_input

    x = to_input(torch.as_tensor(images[:n]).unsqueeze(1), model.pretrained_cfg, channels_last=False)  # (n,1,48,48)
    model.init_whitening(crop_to(x, model.pretrained_cfg["input_size"][-1]))


@contextmanager
def run_lock(run_dir: Path):
    """An exclusive lock on run_dir/.lock while training: a second run into the same folder would write every
    metrics row twice and race on the checkpoints, so it is refused. DDP's worker ranks (LOCAL_RANK or NODE_RANK
    > 0) belong to the launching process's run and do not lock."""
    import fcntl
    import os

    if int(os.environ.get("LOCAL_RANK", "0")) > 0 or int(os.environ.get("NODE_RANK", "0")) > 0:
        yield
        return
    with (run_dir / ".lock").open("a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            raise RunDirBusy(
                f"{run_dir} is in use by a run still training (pid {holder}); wait for it or choose another --run-dir"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _git_commit() -> str | None:
    """The commit of the source tree that trains (run from a git worktree of a fixed commit), if any."""
    import subprocess

    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _load_init(model: torch.nn.Module, cfg: TrainConfig) -> None:
    """Fine-tuning starts from a finished model.pt of the same architecture."""
    start = load_checkpoint(cfg.init)
    if start.get("model") != cfg.model or start.get("model_args", {}) != cfg.model_args:
        raise ValueError(
            f"init {cfg.init} is a {start.get('model')} {start.get('model_args', {})}, "
            f"the recipe a {cfg.model} {cfg.model_args}"
        )
    model.load_state_dict(start["state_dict"])


def _ferplus_protocol(cfg: TrainConfig, ds):
    """The data relabelled with FER+'s eight classes, and the recipe's model given an 8-class head that names
    them (its contract carries the labels, so evaluation and the runtime read them from the file)."""
    from ferkit.data import FERPLUS_EMOTIONS, ferplus_labelled

    if cfg.teachers or cfg.teacher_logits:
        raise ConfigError("labels=ferplus: teachers predict FER2013's seven classes and cannot teach FER+'s eight")
    if cfg.split != "official":
        raise ConfigError("labels=ferplus follows FER+'s protocol on the official split (split=official)")
    cfg.model_args = {**cfg.model_args, "labels": list(FERPLUS_EMOTIONS)}
    return ferplus_labelled(ds)


def _check_self_distill(cfg: TrainConfig) -> None:
    """Self-distillation softens FER2013's own labels with the model's predictions; other soft targets replace those
    labels, so the two are not combined."""
    if not cfg.self_distill:
        return
    others = {
        "teachers": bool(cfg.teachers),
        "teacher_logits": bool(cfg.teacher_logits),
        "ferplus_weight": cfg.ferplus_weight > 0,
        "labels=ferplus": cfg.labels == "ferplus",
    }
    if clash := [name for name, on in others.items() if on]:
        raise ConfigError(f"self_distill softens the plain FER2013 labels and does not combine with {', '.join(clash)}")


def _check_sam(cfg: TrainConfig) -> None:
    """SAM's ascent step scores a sub-batch against each image's own target (label, FER+ mix or self-distilled);
    distillation's loss is not built that way, so SAM is for label training."""
    if cfg.sam_rho > 0 and (cfg.teachers or cfg.teacher_logits):
        raise ConfigError("sam_rho applies to label training (ferkit train), not to distillation from teachers")


def _outside_fold(cfg: TrainConfig, train: FERDataset, targets: np.ndarray | None):
    """The Training images (and their targets) outside fold `cfg.fold` of `cfg.folds`: a k-fold teacher's share."""
    from ferkit.data import kfold_assignment

    if cfg.split != "official" or not 0 <= cfg.fold < cfg.folds:
        raise ConfigError(f"fold={cfg.fold} of folds={cfg.folds}: needs split=official and 0 <= fold < folds")
    keep = kfold_assignment(train.images, cfg.folds, cfg.fold_seed) != cfg.fold
    return train.select(keep), None if targets is None else targets[keep]


def run_recipe(cfg: TrainConfig, run_dir: Path | None = None) -> tuple[dict, Path]:
    """A resolved recipe end to end: its data (FER+ votes joined when it mixes them in), splits, soft targets, the
    `limit` of smoke runs, the run folder with its config.yaml, then `train`. Rerunning resumes."""
    import yaml

    from ferkit.data import load_fer2013, make_splits, with_votes

    _check_self_distill(cfg)
    _check_sam(cfg)
    ds = load_fer2013(cfg.data)
    if cfg.ferplus_weight > 0 or cfg.labels == "ferplus":
        ds = with_votes(ds, cfg.ferplus)
    if cfg.labels == "ferplus":
        ds = _ferplus_protocol(cfg, ds)
    splits = make_splits(ds, cfg.split, seed=cfg.seed)
    targets = soft_targets(cfg, splits)
    if cfg.folds:
        splits.train, targets = _outside_fold(cfg, splits.train, targets)
    if cfg.limit:
        first = slice(0, cfg.limit)
        splits.train, splits.val, splits.test = (p.select(first) for p in (splits.train, splits.val, splits.test))
        targets = None if targets is None else targets[first]
    run_dir = run_dir or Path(cfg.out) / f"{cfg.name}-{cfg.split}-s{cfg.seed}"
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
    return train(cfg, splits, run_dir, targets), run_dir
