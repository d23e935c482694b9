"""Model files are validated when they load: a bad contract is a ModelFileError naming it (issue 21, 11)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ferkit.runtime import ModelFileError, Recognizer

LABELS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


def tiny_graph(path, side: int = 48, classes: int = 7, contract: str | None = None):
    """A linear classifier as an ONNX graph: (N, 1, side, side) -> (N, classes)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.random.default_rng(0).normal(size=(side * side, classes)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["faces"], ["flat"]), helper.make_node("MatMul", ["flat", "w"], ["logits"])],
        "tiny",
        [helper.make_tensor_value_info("faces", TensorProto.FLOAT, ["N", 1, side, side])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", classes])],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    entry = model.metadata_props.add()
    entry.key = "ferkit_contract"
    entry.value = contract if contract is not None else json.dumps({"labels": LABELS[:classes], "temperature": 1.0})
    onnx.save(model, str(path))
    return path


def test_a_good_tiny_model_loads_and_predicts(tmp_path):
    rec = Recognizer.from_file(tiny_graph(tmp_path / "ok.onnx"))
    assert rec.probabilities(np.zeros((2, 48, 48), np.uint8)).shape == (2, 7)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"contract": "{not json"}, "not JSON"),
        ({"contract": "[1, 2]"}, "not a JSON object"),
        ({"contract": json.dumps({"labels": LABELS[:6]})}, "outputs \\['N', 7\\] but the contract names 6 labels"),
        ({"contract": json.dumps({"labels": LABELS, "temperature": 0})}, "temperature must be a positive number"),
        ({"contract": json.dumps({"labels": LABELS, "temperature": "hot"})}, "temperature must be a positive"),
        ({"contract": json.dumps({"labels": "happy"})}, "labels must be a list of names"),
        ({"side": 32}, "takes \\['N', 1, 32, 32\\]"),
    ],
)
def test_bad_contracts_are_refused_at_load(tmp_path, kwargs, message):
    with pytest.raises(ModelFileError, match=message):
        Recognizer.from_file(tiny_graph(tmp_path / "bad.onnx", **kwargs))


def test_health_says_what_the_model_can_do(tmp_path):
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    from ferkit.serve import create_app

    client = TestClient(create_app(Recognizer.from_file(tiny_graph(tmp_path / "ok.onnx")), max_bytes=1000))
    can = client.get("/health").json()["can"]
    assert can == {"predict": True, "score_targets": LABELS, "max_body_bytes": 1000}
