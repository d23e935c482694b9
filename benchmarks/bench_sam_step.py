"""The cost of SAM's ascent: one training step (module step + backward + SGD) with and without `sam_rho`.

python benchmarks/bench_sam_step.py [--model fast_fer] [--crop 44] [--batch-size 256] [--steps 8] [--rounds 2]

Alternates the two settings `rounds` times in one process so that both see the same machine state; the first two
steps of each measurement are warm-up. bf16 autocast where the processor computes bf16 natively, else fp32.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import report

from ferkit.models import create_model
from ferkit.training.config import Phase, TrainConfig
from ferkit.training.loop import resolve_precision
from ferkit.training.modules import FERModule


def seconds_per_step(args, rho: float, bf16: bool) -> float:
    torch.manual_seed(0)
    config = TrainConfig(sam_rho=rho, sam_fraction=args.fraction, label_smoothing=0.2)
    module = FERModule(create_model(args.model, crop=args.crop), config, Phase())
    module._trainer = SimpleNamespace(current_epoch=0, global_rank=0)  # no Trainer: the step alone is timed
    module.log = lambda *a, **k: None
    module = module.train().to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(module.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(args.batch_size, 1, 48, 48).contiguous(memory_format=torch.channels_last)  # (B, 1, 48, 48)
    y = torch.arange(args.batch_size) % 7
    times = []
    for i in range(args.steps + 2):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = module.training_step((x, y), i)
        loss.backward()
        module.on_before_optimizer_step(opt)
        opt.step()
        opt.zero_grad()
        times.append(time.perf_counter() - start)
    return sum(times[2:]) / args.steps


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="fast_fer")
    p.add_argument("--crop", type=int, default=44)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--rho", type=float, default=0.05)
    p.add_argument("--fraction", type=float, default=0.25)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    bf16 = resolve_precision(TrainConfig()) == "bf16-mixed"
    rows = []
    for r in range(args.rounds):
        plain, sam = seconds_per_step(args, 0.0, bf16), seconds_per_step(args, args.rho, bf16)
        rows.append({"round": r, "s/step plain": plain, "s/step SAM": sam, "ratio": sam / plain})
    report(f"sam_step_{args.model}", rows, {"bf16": bf16, "rho": args.rho, "fraction": args.fraction})


if __name__ == "__main__":
    main()
