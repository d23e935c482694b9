"""The shipped models (every name in BUNDLED): their files, metadata and outputs are pinned."""

import json
from pathlib import Path

import numpy as np
import pytest

from ferkit.bundled import BUNDLED, bundled_model_path
from ferkit.errors import ModelFileError
from ferkit.golden import file_sha256, golden_faces
from ferkit.runtime import Recognizer

GOLDEN = Path(__file__).resolve().parents[1] / "golden"


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_model_is_shipped_small_and_self_describing(name):
    path = bundled_model_path(name)
    assert path.is_file() and path.stat().st_size < 25 * 1024 * 1024
    rec = Recognizer.default(name)
    assert Recognizer.load(name).source == rec.source == str(path)
    assert rec.labels == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    ev = json.loads(rec.metadata["evaluation"])
    assert 0 < ev["PublicTest"]["accuracy"] <= 1 and ev["temperature"] == pytest.approx(rec.temperature)


@pytest.mark.parametrize("name", BUNDLED)
def test_golden_outputs(name):
    golden = json.loads((GOLDEN / f"{name}_model.json").read_text())
    rec = Recognizer.default(name)
    assert golden["model_sha256"] == file_sha256(rec.source), "bundled model changed: re-run `ferkit bundle`"
    got, want = rec.probabilities(golden_faces()), np.asarray(golden["probabilities"])
    # An int8 file's integer kernels differ between CPUs (VNNI, AVX2, ARM) in how they requantize: a last-bit
    # change inside the graph can move a probability by ~1e-2; the top expression must stay.
    quantized = "quantization" in rec.metadata
    np.testing.assert_allclose(got, want, atol=2e-2 if quantized else 1e-5)
    assert (got.argmax(1) == want.argmax(1)).all()


def test_an_unknown_bundled_name_says_which_exist():
    with pytest.raises(ModelFileError, match="no bundled model named 'tiny'; bundled: default, mobile"):
        Recognizer.default("tiny")
