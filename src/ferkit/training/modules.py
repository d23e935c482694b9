"""The LightningModule: normalisation, augmentation on the batch's device, loss, metrics, optimizers."""

from __future__ import annotations

import dataclasses
from contextlib import contextmanager
from functools import partial

import lightning as L
import torch
import torch.nn.functional as F

from ferkit.labels import NUM_CLASSES
from ferkit.models.preprocess import crop_to, to_input
from ferkit.training.augment import augment, mixup, random_erasing
from ferkit.training.config import Phase, TrainConfig, to_dict

Mix = tuple[torch.Tensor, float]  # mixup's partner indices (B,) and the weight of each image's own label


def _mix_rows(target: torch.Tensor, mix: Mix | None) -> torch.Tensor:
    """Per-image target probabilities (B, K) of a mixed batch: each blend's own row and its partner's, by lam."""
    if mix is None:
        return target
    partner, lam = mix
    return lam * target + (1 - lam) * target[partner]


def _row_targets(y: torch.Tensor, mix: Mix | None, soft: torch.Tensor | None) -> torch.Tensor:
    """Each training image's target probabilities (B, 7), mixup folded in. Cross-entropy is linear in its target
    (label smoothing too), so scoring against these equals the lam-weighted sum of `_cross_entropy`, row by row."""
    return _mix_rows(F.one_hot(y, NUM_CLASSES).float() if soft is None else soft.float(), mix)


@contextmanager
def _running_stats_kept(model: torch.nn.Module):
    """A training-mode pass that leaves BatchNorm's running mean, variance and count as they were."""
    norms = [
        m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.track_running_stats
    ]
    kept = [(m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone()) for m in norms]
    try:
        yield
    finally:
        with torch.no_grad():
            for m, (mean, var, count) in zip(norms, kept, strict=True):
                m.running_mean.copy_(mean)
                m.running_var.copy_(var)
                m.num_batches_tracked.copy_(count)


class FERModule(L.LightningModule):
    def __init__(self, model: torch.nn.Module, config: TrainConfig, phase: Phase) -> None:
        super().__init__()
        self.model, self.config, self.phase = model, config, phase
        self.contract = model.pretrained_cfg
        self._sam_kept: list[tuple[torch.Tensor, torch.Tensor]] = []  # SAM: (parameter, its value at w) mid-step
        # The resolved recipe travels inside every Lightning checkpoint.
        self.save_hyperparameters({"config": to_dict(config), "phase": dataclasses.asdict(phase)})

    def _batch_seed(self, batch_idx: int) -> int:
        return (self.config.seed * 1_000_003 + self.current_epoch * 10_007 + batch_idx) * 64 + self.global_rank

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        # Dropout draws from the global RNG, which Lightning's loader set-up also draws from, at moments that
        # differ on resume: reseeding per batch makes every draw a function of (seed, epoch, batch) alone.
        torch.manual_seed(self._batch_seed(batch_idx))

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        x, *rest = batch  # rest: labels (B,) [, per-image targets (B, K)]
        return (to_input(x, self.contract, self.config.channels_last), *rest)  # (B, 1, 48, 48) float

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def _cross_entropy(
        self, logits: torch.Tensor, y: torch.Tensor, mix: Mix | None, soft: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Training loss (label smoothing; a mixed batch scores against both labels, weighted by lam).

        soft: (B, 7) target probabilities (e.g. FER+ votes mixed with the label) used instead of y."""
        ce = partial(F.cross_entropy, logits.float(), label_smoothing=self.config.label_smoothing)
        target = y if soft is None else soft
        if mix is None:
            return ce(target)
        partner, lam = mix
        return lam * ce(target) + (1 - lam) * ce(target[partner])

    def _step(self, batch, stage: str, mix: Mix | None = None, soft: torch.Tensor | None = None) -> torch.Tensor:
        x, y = batch
        logits = self(x)
        if stage == "train":
            loss = self._cross_entropy(logits, y, mix, soft)
            y = y if mix is None or mix[1] >= 0.5 else y[mix[0]]  # accuracy against the dominant label
        else:
            loss = F.cross_entropy(logits.float(), y)
        acc = (logits.argmax(1) == y).float().mean()
        on_step = stage == "train"
        self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True, prog_bar=on_step, sync_dist=True)
        self.log(f"{stage}_acc", acc, on_step=False, on_epoch=True, prog_bar=True, sync_dist=True)
        return loss

    def _log_train(self, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> None:
        """The epoch's training loss and accuracy (against each image's own label, mixed or not)."""
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, sync_dist=True)
        self.log("train_acc", (logits.argmax(1) == y).float().mean(), on_step=False, on_epoch=True, sync_dist=True)

    def _augmented(self, x: torch.Tensor, batch_idx: int) -> tuple[torch.Tensor, Mix | None]:
        """(B, 1, 48, 48) -> (B, 1, crop, crop): affine, random crop, erasing and mixup, on the batch's own device,
        from a generator seeded by (seed, epoch, batch, rank) so that a resumed run draws the same."""
        aug = self.phase.augment
        g = torch.Generator(device=x.device).manual_seed(self._batch_seed(batch_idx) + 1)
        x = random_erasing(crop_to(augment(x, aug, g), self.contract["input_size"][-1], g), aug.erasing, g)
        if aug.mixup <= 0:
            return x, None
        x, partner, lam = mixup(x, aug.mixup, g)
        return x, (partner, lam)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, y, *soft = batch  # soft: [(B, 7) target probabilities] when the recipe mixes in FER+ votes
        x, mix = self._augmented(x, batch_idx)
        soft = soft[0] if soft else None
        self._sharpness_ascent(x, y, mix, soft)
        return self._step((x, y), "train", mix, soft)

    def _sharpness_ascent(self, x: torch.Tensor, y: torch.Tensor, mix: Mix | None, soft: torch.Tensor | None) -> None:
        """SAM's first half (Foret et al., 2021): move the weights to w + e, e = rho * g / |g|, g the loss gradient
        on the batch's first sam_fraction (x (B, 1, crop, crop) against each image's target, `_row_targets`). The
        step's own forward and backward then run at w + e; on_before_optimizer_step moves the weights back to w
        before the optimizer applies that gradient. The ascent pass leaves BatchNorm's running statistics as it
        found them."""
        self._sam_kept = []
        rho = self.config.sam_rho
        if rho <= 0:
            return
        k = max(1, round(len(x) * self.config.sam_fraction))
        target = _row_targets(y, mix, soft)[:k]  # (k, 7); the whole batch first: a blend's partner may lie past k
        params = [p for p in self.model.parameters() if p.requires_grad]
        with _running_stats_kept(self.model):  # restored after the backward, which reads the saved statistics
            logits = self(x[:k]).float()  # (k, 7)
            loss = F.cross_entropy(logits, target, label_smoothing=self.config.label_smoothing)
            grads = torch.autograd.grad(loss, params, allow_unused=True)
        moved = [(p, g) for p, g in zip(params, grads, strict=True) if g is not None]
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.float()) for _, g in moved]))
        scale = rho / (norm + 1e-12)
        with torch.no_grad():
            for p, g in moved:
                self._sam_kept.append((p, p.detach().clone()))  # w itself: w + e - e need not round back to w
                p.add_((g * scale).to(p.dtype))

    def on_before_optimizer_step(self, optimizer) -> None:
        # After backward at w + e, before the optimizer's step: back to w (the gradient stays that of w + e).
        with torch.no_grad():
            for p, w in self._sam_kept:
                p.copy_(w)
        self._sam_kept = []

    def validation_step(self, batch, batch_idx: int) -> None:
        x, y = batch[:2]
        self._step((crop_to(x, self.contract["input_size"][-1]), y), "val")

    def _param_groups(self) -> list[dict]:
        """Weight decay on conv and linear weights only: decaying BatchNorm scales and biases only hurts."""
        decay, no_decay = [], []
        for p in self.model.parameters():
            if p.requires_grad:
                (decay if p.ndim > 1 else no_decay).append(p)
        return [
            {"params": decay, "weight_decay": self.config.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]

    def configure_optimizers(self):
        c, lr = self.config, self.phase.lr or self.config.lr
        if c.optimizer == "adam":
            opt = torch.optim.Adam(self._param_groups(), lr=lr)
        elif c.optimizer == "sgd":
            opt = torch.optim.SGD(self._param_groups(), lr=lr, momentum=c.momentum, nesterov=True)
        else:
            raise ValueError(f"unknown optimizer {c.optimizer!r}; expected adam or sgd")
        if c.scheduler in ("cosine", "linear"):
            sched = self._warmup_decay(opt, c.scheduler)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
        if c.scheduler != "plateau":
            raise ValueError(f"unknown scheduler {c.scheduler!r}; expected plateau, cosine or linear")
        plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, mode="min", factor=self.phase.plateau_factor, patience=self.phase.plateau_patience
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": plateau, "monitor": "val_loss", "interval": "epoch"}}

    def _warmup_decay(self, opt, shape: str) -> torch.optim.lr_scheduler.LambdaLR:
        """Linear warm-up, then cosine or linear decay to zero at the phase's last step."""
        import math

        total = max(1, int(self.trainer.estimated_stepping_batches))
        warm = int(self.config.warmup_epochs * total / max(1, self.phase.epochs))

        def factor(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            done = min(1.0, (step - warm) / max(1, total - warm))
            return 1 - done if shape == "linear" else 0.5 * (1 + math.cos(math.pi * done))

        return torch.optim.lr_scheduler.LambdaLR(opt, factor)


class DistillModule(FERModule):
    """A student fitted to labels and to its teachers' softened probabilities (Hinton et al., 2015)."""

    def __init__(self, model: torch.nn.Module, config: TrainConfig, phase: Phase, teachers: list[torch.nn.Module]):
        super().__init__(model, config, phase)
        size = self.contract["input_size"][-1]
        if any(t.pretrained_cfg["input_size"][-1] != size for t in teachers):
            raise ValueError("distillation needs teachers that take the student's input size")
        # A plain list keeps the teachers out of the student's state_dict, optimizer and checkpoints.
        self.teachers = [t.eval().requires_grad_(False) for t in teachers]

    def on_fit_start(self) -> None:
        for t in self.teachers:
            t.to(self.device)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, y = batch
        x, mix = self._augmented(x, batch_idx)
        logits = self(x).float()
        with torch.no_grad():  # teachers see the same augmented crop, each normalised its own way
            t_logits = torch.stack([t(self._renormalise(x, t)).float() for t in self.teachers]).mean(0)
        temp, alpha = self.config.distill_temperature, self.config.distill_alpha
        kl = (
            F.kl_div(
                F.log_softmax(logits / temp, 1),
                F.log_softmax(t_logits / temp, 1),
                log_target=True,
                reduction="batchmean",
            )
            * temp
            * temp
        )
        loss = alpha * kl + (1 - alpha) * self._cross_entropy(logits, y, mix)
        self._log_train(loss, logits, y)
        return loss

    def _renormalise(self, x: torch.Tensor, teacher: torch.nn.Module) -> torch.Tensor:
        """x is normalised by the student's contract; give the teacher its own."""
        s, t = self.contract, teacher.pretrained_cfg
        if (s["mean"], s["std"], s["scale"]) == (t["mean"], t["std"], t["scale"]):
            return x
        mean_s, std_s = torch.tensor(s["mean"], device=x.device), torch.tensor(s["std"], device=x.device)
        mean_t, std_t = torch.tensor(t["mean"], device=x.device), torch.tensor(t["std"], device=x.device)
        raw = (x * std_s.view(1, -1, 1, 1) + mean_s.view(1, -1, 1, 1)) / s["scale"]
        return (raw * t["scale"] - mean_t.view(1, -1, 1, 1)) / std_t.view(1, -1, 1, 1)


def soft_kl(student: torch.Tensor, teacher_probs: torch.Tensor, temp: float) -> torch.Tensor:
    """KL(teacher || student) at temperature temp, scaled by temp^2 (Hinton et al.); teacher_probs already softened."""
    log_p = F.log_softmax(student.float() / temp, 1)
    return F.kl_div(log_p, teacher_probs.clamp_min(1e-12).log(), log_target=True, reduction="batchmean") * temp * temp


class LogitDistillModule(FERModule):
    """A student fitted to labels and to teachers' committed Training logits (no teacher model is loaded).

    Batches carry each image's ensembled teacher logits (B, 7): the teachers saw the plain centre crop, the student
    an augmented view of the same face (offline distillation). With FER+ mixing too they carry (B, 14): the
    teachers' logits, then the label mixed with the FER+ votes, which replaces the one-hot label in the hard term."""

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, y, extra = batch
        t_logits, soft = extra[:, :NUM_CLASSES], (extra[:, NUM_CLASSES:] if extra.shape[1] > NUM_CLASSES else None)
        x, mix = self._augmented(x, batch_idx)
        logits = self(x).float()
        temp, alpha = self.config.distill_temperature, self.config.distill_alpha
        t_probs = _mix_rows(F.softmax(t_logits.float() / temp, 1), mix)  # (B, 7)
        loss = alpha * soft_kl(logits, t_probs, temp) + (1 - alpha) * self._cross_entropy(logits, y, mix, soft)
        self._log_train(loss, logits, y)
        return loss


class SelfDistillModule(FERModule):
    """Progressive self-knowledge distillation (PS-KD, Kim et al., ICCV 2021): the model's own predictions of the
    previous epoch soften its labels, more as training goes on (config.self_distill is the final weight).

    Batches carry each image's row (B,), which indexes `past` (N, 7): the last probabilities the model gave that
    image while training. They come from the training forward pass itself (no extra pass; the augmented view, as in
    the paper). Under mixup a batch is recorded only when one image dominates every blend (lam >= RECORD_LAM or
    <= 1 - RECORD_LAM), under that image's row. Unrecorded rows hold their one-hot label."""

    RECORD_LAM = 0.8

    def __init__(self, model: torch.nn.Module, config: TrainConfig, phase: Phase, labels: torch.Tensor) -> None:
        super().__init__(model, config, phase)
        self.past = F.one_hot(labels.long(), NUM_CLASSES).float()  # (N, 7) on the CPU, outside the state_dict

    def alpha(self) -> float:
        """The weight of the past predictions: 0 in the phase's first epoch, config.self_distill in its last."""
        return self.config.self_distill * self.current_epoch / max(1, self.phase.epochs - 1)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, y, rows = batch
        x, mix = self._augmented(x, batch_idx)
        a, rows = self.alpha(), rows.cpu()
        soft = (1 - a) * F.one_hot(y, NUM_CLASSES).float() + a * self.past[rows].to(y.device)  # (B, 7)
        self._sharpness_ascent(x, y, mix, soft)
        logits = self(x)
        loss = self._cross_entropy(logits, y, mix, soft)
        self._record(logits.detach(), rows, mix)
        self._log_train(loss, logits, y)
        return loss

    def _record(self, logits: torch.Tensor, rows: torch.Tensor, mix: Mix | None) -> None:
        probs = F.softmax(logits.float(), 1).cpu()  # (B, 7)
        if mix is None or mix[1] >= self.RECORD_LAM:
            self.past[rows] = probs
        elif mix[1] <= 1 - self.RECORD_LAM:  # blend k is mostly image partner[k]
            self.past[rows[mix[0].cpu()]] = probs

    # The past predictions are part of the training state: a resumed run must soften with the same ones.
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["self_distill_past"] = self.past.clone()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if "self_distill_past" in checkpoint:
            self.past = checkpoint["self_distill_past"].float().cpu()
