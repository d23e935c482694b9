import torch

from ferkit.training.augment import augment, random_affine
from ferkit.training.batches import EpochBatchSampler, TensorBatches
from ferkit.training.config import Augment

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


def test_crop_random_and_centre():
    from ferkit.models.preprocess import crop_to, ten_crops

    x = torch.arange(2 * 48 * 48, dtype=torch.float32).view(2, 1, 48, 48)
    centre = crop_to(x, 44)
    assert centre.shape == (2, 1, 44, 44) and torch.equal(centre, x[:, :, 2:46, 2:46])
    rand = crop_to(x, 44, torch.Generator().manual_seed(0))
    assert rand.shape == (2, 1, 44, 44)
    for i in range(2):  # each random crop is a contiguous window of its own image
        top, left = divmod(int(rand[i, 0, 0, 0].item()) - i * 48 * 48, 48)
        assert torch.equal(rand[i], x[i, :, top : top + 44, left : left + 44])
    views = ten_crops(x, 44)
    assert len(views) == 10 and torch.equal(views[4], centre) and torch.equal(views[9], centre.flip(3))
    assert crop_to(x, 48) is x


def test_random_erasing_zeros_one_rectangle_in_chosen_images():
    from ferkit.training.augment import random_erasing

    x = torch.ones(64, 1, 48, 48)
    y = random_erasing(x, 0.5, torch.Generator().manual_seed(0))
    erased = (y == 0).flatten(1).sum(1)
    assert 10 < (erased > 0).sum() < 54  # about half the images
    frac = erased[erased > 0].float() / (48 * 48)
    assert frac.min() > 0.005 and frac.max() < 0.3
    assert torch.equal(random_erasing(x, 0.0, torch.Generator()), x)


def test_mixup_blends_each_image_with_one_partner_and_replays_from_the_seed():
    from ferkit.training.augment import mixup

    x = torch.rand(16, 1, 44, 44)
    mixed, partner, lam = mixup(x, 0.2, torch.Generator().manual_seed(3))
    assert mixed.shape == x.shape and 0 < lam < 1
    assert sorted(partner.tolist()) == list(range(16))  # a permutation: every image is someone's partner
    torch.testing.assert_close(mixed, lam * x + (1 - lam) * x[partner])
    again, partner2, lam2 = mixup(x, 0.2, torch.Generator().manual_seed(3))
    assert lam2 == lam and torch.equal(partner2, partner) and torch.equal(again, mixed)
    same, identity, one = mixup(x, 0.0, torch.Generator())
    assert same is x and one == 1.0 and identity.tolist() == list(range(16))
