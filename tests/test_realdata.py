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
    r = quality_report(real[1])
    assert (r.public_in_training, r.private_in_training, r.private_in_public, r.conflicting_groups) == (
        249,
        261,
        44,
        51,
    )


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
