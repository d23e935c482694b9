"""Lightning callbacks of ferkit's own."""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from ferkit.atomic import write_atomically


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, written beside the target and renamed (Lightning's own goes through $TMPDIR
    and copies across file systems, which a full disk truncates)."""

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        write_atomically(Path(path), partial(torch.save, checkpoint))


class EpochLine(L.Callback):
    """One line per epoch for logs (background runs have no terminal for a progress bar)."""

    def __init__(self, phase: str) -> None:
        self.phase, self.t0 = phase, time.perf_counter()

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.t0 = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if trainer.global_rank != 0:
            return
        m = {k: float(v) for k, v in trainer.callback_metrics.items()}
        lr = trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else float("nan")
        print(
            f"[{self.phase}] epoch {trainer.current_epoch:3d}  train_loss {m.get('train_loss', float('nan')):.4f}  "
            f"train_acc {m.get('train_acc', float('nan')):.4f}  val_loss {m.get('val_loss', float('nan')):.4f}  "
            f"val_acc {m.get('val_acc', float('nan')):.4f}  lr {lr:.2e}  {time.perf_counter() - self.t0:.0f}s",
            flush=True,
        )


class PhaseClock(L.Callback):
    """A phase's training seconds, summed over resumes: each checkpoint carries the time spent up to it.

    Without it a resumed phase would report only the last process's time (a phase may span several sessions).
    """

    def __init__(self) -> None:
        self.before, self.t0 = 0.0, time.perf_counter()

    @property
    def seconds(self) -> float:
        return self.before + time.perf_counter() - self.t0

    def on_fit_start(self, trainer, pl_module) -> None:
        self.t0 = time.perf_counter()

    def state_dict(self) -> dict:
        return {"seconds": self.seconds}

    def load_state_dict(self, state_dict: dict) -> None:
        self.before, self.t0 = float(state_dict["seconds"]), time.perf_counter()
