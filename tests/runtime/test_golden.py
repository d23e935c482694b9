"""The shipped default model: its file, metadata and outputs are pinned."""

import json
from pathlib import Path

import numpy as np
import pytest

from ferkit.golden import file_sha256, golden_faces
from ferkit.runtime import Recognizer, default_model_path

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "default_model.json"


def test_bundled_model_is_shipped_small_and_self_describing():
    path = default_model_path()
    assert path.is_file() and path.stat().st_size < 25 * 1024 * 1024
    rec = Recognizer.default()
    assert rec.labels == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    ev = json.loads(rec.metadata["evaluation"])
    assert 0 < ev["PublicTest"]["accuracy"] <= 1 and ev["temperature"] == pytest.approx(rec.temperature)


def test_golden_outputs():
    golden = json.loads(GOLDEN.read_text())
    rec = Recognizer.default()
    assert golden["model_sha256"] == file_sha256(rec.source), "bundled model changed: re-run `ferkit bundle`"
    np.testing.assert_allclose(rec.probabilities(golden_faces()), golden["probabilities"], atol=1e-5)
