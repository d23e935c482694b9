"""The LightningModule: normalisation, augmentation on the batch's device, loss, metrics, optimizers."""

from __future__ import annotations

import dataclasses

import lightning as L
import torch
import torch.nn.functional as F

from ferkit.augment import augment
from ferkit.config import Phase, TrainConfig, to_dict


def to_input(x_u8: torch.Tensor, cfg: dict, channels_last: bool) -> torch.Tensor:
    """(B, 1, 48, 48) uint8 -> float32 normalised by the model's own contract (scale, mean, std)."""
    x = x_u8.float() * cfg["scale"]
    mean = torch.tensor(cfg["mean"], device=x.device).view(1, -1, 1, 1)
    std = torch.tensor(cfg["std"], device=x.device).view(1, -1, 1, 1)
    x = (x - mean) / std
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


class FERModule(L.LightningModule):
    def __init__(self, model: torch.nn.Module, config: TrainConfig, phase: Phase) -> None:
        super().__init__()
        self.model, self.config, self.phase = model, config, phase
        self.contract = model.pretrained_cfg
        # The resolved recipe travels inside every Lightning checkpoint.
        self.save_hyperparameters({"config": to_dict(config), "phase": dataclasses.asdict(phase)})

    def _batch_seed(self, batch_idx: int) -> int:
        return (self.config.seed * 1_000_003 + self.current_epoch * 10_007 + batch_idx) * 64 + self.global_rank

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        # Dropout draws from the global RNG, which Lightning's loader set-up also draws from, at moments that
        # differ on resume: reseeding per batch makes every draw a function of (seed, epoch, batch) alone.
        torch.manual_seed(self._batch_seed(batch_idx))

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        x, y = batch
        return to_input(x, self.contract, self.config.channels_last), y  # (B, 1, 48, 48) float, (B,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def _step(self, batch, stage: str) -> torch.Tensor:
        x, y = batch
        logits = self(x)
        smoothing = self.config.label_smoothing if stage == "train" else 0.0
        loss = F.cross_entropy(logits.float(), y, label_smoothing=smoothing)
        acc = (logits.argmax(1) == y).float().mean()
        on_step = stage == "train"
        self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True, prog_bar=on_step, sync_dist=True)
        self.log(f"{stage}_acc", acc, on_step=False, on_epoch=True, prog_bar=True, sync_dist=True)
        return loss

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, y = batch
        # Augmented on the batch's own device, from a generator seeded by (seed, epoch, batch, rank).
        g = torch.Generator(device=x.device).manual_seed(self._batch_seed(batch_idx) + 1)
        return self._step((augment(x, self.phase.augment, g), y), "train")

    def validation_step(self, batch, batch_idx: int) -> None:
        self._step(batch, "val")

    def configure_optimizers(self):
        c, lr = self.config, self.phase.lr or self.config.lr
        if c.optimizer == "adam":
            opt = torch.optim.Adam(self.parameters(), lr=lr, weight_decay=c.weight_decay)
        elif c.optimizer == "sgd":
            opt = torch.optim.SGD(
                self.parameters(), lr=lr, momentum=c.momentum, nesterov=True, weight_decay=c.weight_decay
            )
        else:
            raise ValueError(f"unknown optimizer {c.optimizer!r}; expected adam or sgd")
        plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, mode="min", factor=self.phase.plateau_factor, patience=self.phase.plateau_patience
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": plateau, "monitor": "val_loss", "interval": "epoch"}}
