"""Training throughput of a model on this machine: ferkit's Lightning step vs a plain fp32 PyTorch loop.

python benchmarks/bench_train.py [--model seed_vgg] [--batch-size 64] [--steps 40] [--precision auto]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import report

from ferkit.models import count_macs, create_model, training_step_flops
from ferkit.training.batches import make_loader
from ferkit.training.config import Augment, Phase, TrainConfig
from ferkit.training.loop import resolve_precision
from ferkit.training.modules import FERModule


class StepTimer(L.Callback):
    """Seconds from batch `warmup` to the last batch."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.t0, self.t1, self.n = warmup, 0.0, 0.0, 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == self.warmup:
            self.t0 = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if batch_idx >= self.warmup:
            self.t1, self.n = time.perf_counter(), self.n + len(batch[1])


def ferkit_throughput(
    model_name: str,
    images,
    labels,
    batch: int,
    steps: int,
    augment: bool,
    precision: str = "auto",
    compile: bool = False,
) -> tuple[float, str]:
    cfg = TrainConfig(model=model_name, batch_size=batch, precision=precision, compile=compile)
    precision = resolve_precision(cfg)
    phase = Phase(epochs=1, augment=Augment(10, 0.1, 0.1, True) if augment else Augment())
    model = create_model(model_name).to(memory_format=torch.channels_last)
    if compile:  # as the training loop does (`compile: true`); its first steps compile, the timer skips them
        model.compile()
    timer = StepTimer(warmup=8 if compile else 5)
    trainer = L.Trainer(
        max_epochs=1,
        limit_train_batches=steps,
        limit_val_batches=1,
        precision=precision,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
    )
    val = make_loader(images[:256], labels[:256], 256, False, 0)
    trainer.fit(FERModule(model, cfg, phase), make_loader(images, labels, batch, True, 0), val)
    return timer.n / (timer.t1 - timer.t0), precision


def plain_fp32_throughput(model_name: str, images, labels, batch: int, steps: int) -> float:
    """The baseline: the same model in a textbook fp32 loop (NCHW, no autocast)."""
    model = create_model(model_name).train()
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    x_all, y_all = torch.as_tensor(images), torch.as_tensor(labels)
    n = 0
    for step in range(steps):
        if step == 5:
            t0, n = time.perf_counter(), 0
        idx = torch.randint(0, len(x_all), (batch,))
        x = x_all[idx].unsqueeze(1).float() / 255
        loss = F.cross_entropy(model(x), y_all[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        n += batch
    return n / (time.perf_counter() - t0)


def machine_conv_gflops(bf16: bool, reps: int = 6) -> float:
    """The machine's figure: a 128->128 3x3 convolution forward on 22x22 maps, batch 128, channels_last, in bf16 where
    the CPU computes it natively, else fp32 (the precision training uses here)."""
    conv = torch.nn.Conv2d(128, 128, 3, padding=1, bias=False).to(memory_format=torch.channels_last)
    x = torch.randn(128, 128, 22, 22).contiguous(memory_format=torch.channels_last)
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else torch.no_grad()
    with torch.no_grad(), ctx:
        conv(x)
        t0 = time.perf_counter()
        for _ in range(reps):
            conv(x)
        dt = (time.perf_counter() - t0) / reps
    return 2 * 128 * 128 * 9 * 22 * 22 * 128 / dt / 1e9


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="seed_vgg")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--precision", default="auto", help="auto (what training picks here), 32-true or bf16-mixed")
    ap.add_argument("--tag", default="", help="suffix of the JSON's name (a host's figures beside another's)")
    ap.add_argument("--compile", action="store_true", help="also time the step with torch.compile (`compile: true`)")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (4096, 48, 48), dtype=np.uint8)
    labels = rng.integers(0, 7, 4096).astype(np.int64)
    base = plain_fp32_throughput(args.model, images, labels, args.batch_size, args.steps)
    run = (args.model, images, labels, args.batch_size, args.steps)
    fk, precision = ferkit_throughput(*run, augment=False, precision=args.precision)
    fk_aug, _ = ferkit_throughput(*run, augment=True, precision=args.precision)
    conv = machine_conv_gflops(precision.startswith("bf16"))
    step = training_step_flops(count_macs(create_model(args.model))) / 1e9  # GFLOP per image
    rows = [
        {"loop": "plain PyTorch fp32 (NCHW)", "images/s": base, "ratio": 1.0},
        {"loop": f"ferkit Lightning ({precision}, channels_last)", "images/s": fk, "ratio": fk / base},
        {"loop": f"ferkit Lightning ({precision}) + batched augmentation", "images/s": fk_aug, "ratio": fk_aug / base},
    ]
    if args.compile:
        fk_c, _ = ferkit_throughput(*run, augment=True, precision=args.precision, compile=True)
        rows.append(
            {
                "loop": f"ferkit Lightning ({precision}) + batched augmentation + compile",
                "images/s": fk_c,
                "ratio": fk_c / base,
            }
        )
    for r in rows:
        r["GFLOP/s"] = r["images/s"] * step
        r["of conv figure"] = r["GFLOP/s"] / conv
    report(
        f"train_throughput_{args.model}_{precision}{'_' + args.tag if args.tag else ''}",
        rows,
        {
            "batch_size": args.batch_size,
            "threads": torch.get_num_threads(),
            "machine_conv_gflops": conv,
            "conv_precision": "bf16" if precision.startswith("bf16") else "fp32",
            "step_gflop_per_image": step,
        },
    )


if __name__ == "__main__":
    main()
