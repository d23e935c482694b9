import torch

from ferkit.augment import augment, random_affine
from ferkit.batches import EpochBatchSampler, TensorBatches
from ferkit.config import Augment

SEED_AUG = Augment(rotation=10, shift=0.1, zoom=0.1, hflip=True)


def test_keeps_shape_dtype_range_and_changes_images():
    x = torch.rand(16, 1, 48, 48)
    y = augment(x, SEED_AUG, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and y.dtype == x.dtype
    assert y.min() >= x.min() - 1e-6 and y.max() <= x.max() + 1e-6  # bilinear + border fill stays in range
    assert not torch.allclose(x, y)


def test_identity_when_nothing_asked():
    x = torch.rand(4, 1, 48, 48)
    assert augment(x, Augment(), torch.Generator().manual_seed(0)) is x


def test_flip_only_mirrors_exactly():
    x = torch.rand(64, 1, 48, 48)
    y = random_affine(x, Augment(hflip=True), torch.Generator().manual_seed(1))
    mirrored = torch.isclose(y, x.flip(3), atol=1e-5).flatten(1).all(1)
    same = torch.isclose(y, x, atol=1e-5).flatten(1).all(1)
    assert (mirrored | same).all() and mirrored.any() and same.any()


def test_seeded_and_labels_untouched():
    ds = TensorBatches(torch.randint(0, 256, (10, 48, 48), dtype=torch.uint8), torch.arange(10))
    x, labels = ds[[3, 1, 4]]
    assert x.shape == (3, 1, 48, 48) and x.dtype == torch.uint8 and labels.tolist() == [3, 1, 4]
    xf = x.float() / 255
    a = augment(xf, SEED_AUG, torch.Generator().manual_seed(5))
    b = augment(xf, SEED_AUG, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


def test_sampler_is_a_seeded_permutation_per_epoch_and_shards():
    s = EpochBatchSampler(10, 4, shuffle=True, seed=0)
    first = [i for b in s for i in b]
    assert sorted(first) == list(range(10)) and len(s) == 3
    s.set_epoch(1)
    assert [i for b in s for i in b] != first
    s.set_epoch(0)
    assert [i for b in s for i in b] == first
    shards = [[i for b in EpochBatchSampler(10, 4, True, 0, rank=r, world=2) for i in b] for r in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == 5 and set(shards[0]) | set(shards[1]) == set(range(10))
