"""Facts of the real FER2013 file; skipped with a reason when it is not on disk."""

import numpy as np
import pytest
from conftest import real_data_or_skip

from ferkit.data import load_fer2013, quality_report

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    import os

    os.environ["FERKIT_CACHE"] = str(tmp_path_factory.mktemp("realcache"))
    path = real_data_or_skip()
    return path, load_fer2013(path)


def test_split_sizes_and_training_counts(real):
    _, ds = real
    assert [int((ds.usage == u).sum()) for u in ("Training", "PublicTest", "PrivateTest")] == [28709, 3589, 3589]
    assert ds.subset("Training").class_counts().tolist() == [3995, 436, 4097, 7215, 4830, 3171, 4965]


def test_cache_roundtrip_equals_parse(real):
    path, cold = real
    warm = load_fer2013(path)  # from the cache written by the fixture
    uncached = load_fer2013(path, use_cache=False)
    for name in ("images", "labels", "usage", "origin"):
        np.testing.assert_array_equal(getattr(warm, name), getattr(cold, name))
        np.testing.assert_array_equal(getattr(uncached, name), getattr(cold, name))


def test_known_duplicates(real):
    """The facts ../shared/datasets/fer2013/README.md states for the original-order file."""
    r = quality_report(real[1])
    facts = (r.within_training, r.public_in_training, r.private_in_training, r.private_in_public)
    assert facts == (2267, 280, 288, 44)
    assert r.conflicting_groups == 57 and r.near_blank == 13


def test_original_row_order(real):
    _, ds = real
    usage = ds.usage
    assert (usage[:28709] == "Training").all() and (usage[28709:32298] == "PublicTest").all()
    assert (usage[32298:] == "PrivateTest").all() and ds.labels[:6].tolist() == [0, 0, 2, 4, 6, 2]


def test_ferplus_votes_join_the_real_file(real):
    from ferkit.data import ferplus_facts, join_ferplus, read_ferplus

    votes_path = real[0].parents[1] / "ferplus" / "fer2013new.csv"
    if not votes_path.is_file():
        pytest.skip(f"FER+ votes not found at {votes_path}")
    ds = join_ferplus(real[1], read_ferplus(votes_path))
    f = ferplus_facts(ds)
    # 173 not-a-face rows (148 / 10 / 15) and 4 unverified rows (3 Training, 1 PrivateTest) are unusable
    assert f.usable_by_usage == {"Training": 28558, "PublicTest": 3579, "PrivateTest": 3573}
    assert 0.60 < f.plurality_agreement < 0.66  # the two label sets are known to differ that much
    assert f.majority_counts["Training"]["neutral"] > f.majority_counts["Training"]["happiness"]


def test_bundled_model_through_predict_matches_its_evaluation(real):
    """FER2013 crops fed through Recognizer.predict score what the torch evaluation path reported."""
    import json

    from ferkit.runtime import Recognizer

    rec = Recognizer.default()
    test = real[1].subset("PrivateTest")
    results = rec.predict_batch(list(test.images))  # 48x48 inputs: classified as crops
    preds = np.array([rec.labels.index(r[0].expression) for r in results])
    reported = json.loads(rec.metadata["evaluation"])["PrivateTest"]["accuracy"]
    assert abs(float((preds == test.labels).mean()) - reported) <= 1 / len(test)
