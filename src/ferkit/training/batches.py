"""Batches straight from one uint8 tensor: no per-sample decoding, no per-image Python per epoch.

A DataLoader gets whole batches from `TensorBatches[index_list]`; the sampler draws a seeded
permutation per epoch (seed + epoch), so an interrupted run resumes with the same order.
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset, Sampler


class TensorBatches(Dataset):
    """images: (N, 48, 48) uint8, labels: (N,) int64, optional extra: (N, K) float32 per-image targets (soft labels
    or teachers' logits). Indexing with a list returns one batch; with_index appends the images' rows (B,) to it
    (self-distillation keeps a prediction per row)."""

    def __init__(
        self, images: torch.Tensor, labels: torch.Tensor, extra: torch.Tensor | None = None, with_index: bool = False
    ) -> None:
        self.images, self.labels, self.extra, self.with_index = images, labels, extra, with_index

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: list[int]) -> tuple[torch.Tensor, ...]:
        idx = torch.as_tensor(index)
        batch = (self.images[idx].unsqueeze(1), self.labels[idx])  # (B, 1, 48, 48) uint8, (B,)
        batch = batch if self.extra is None else (*batch, self.extra[idx])  # + (B, K)
        return (*batch, idx) if self.with_index else batch  # + (B,)


class EpochBatchSampler(Sampler[list[int]]):
    """Shuffled (or ordered) batches of indices, sharded across `world` ranks; `set_epoch` reseeds."""

    def __init__(self, n: int, batch_size: int, shuffle: bool, seed: int, rank: int = 0, world: int = 1) -> None:
        self.n, self.batch_size, self.shuffle, self.seed = n, batch_size, shuffle, seed
        self.rank, self.world, self.epoch = rank, world, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _indices(self) -> torch.Tensor:
        if not self.shuffle:
            return torch.arange(self.n)
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return torch.randperm(self.n, generator=g)

    def __iter__(self):
        idx = self._indices()
        if self.world > 1:  # every rank gets the same number of samples: the tail is padded by wrapping
            per_rank = -(-self.n // self.world)
            idx = torch.cat([idx, idx[: per_rank * self.world - self.n]])[self.rank :: self.world]
        yield from (idx[i : i + self.batch_size].tolist() for i in range(0, len(idx), self.batch_size))

    def __len__(self) -> int:
        per_rank = -(-self.n // self.world)
        return -(-per_rank // self.batch_size)


def make_loader(
    images,
    labels,
    batch_size: int,
    shuffle: bool,
    seed: int,
    rank: int = 0,
    world: int = 1,
    extra=None,
    with_index: bool = False,
) -> DataLoader:
    """A DataLoader of whole batches from numpy or torch arrays (images kept as uint8)."""
    extra = None if extra is None else torch.as_tensor(extra).float()
    ds = TensorBatches(torch.as_tensor(images), torch.as_tensor(labels), extra, with_index)
    sampler = EpochBatchSampler(len(ds), batch_size, shuffle, seed, rank, world)
    return DataLoader(ds, sampler=sampler, batch_size=None, num_workers=0)
