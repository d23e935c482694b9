"""Every export format on a tiny trained model, checked through its own runtime."""

import json
from pathlib import Path

import numpy as np
import pytest

from ferkit.cli import main
from ferkit.errors import FerkitError
from ferkit.export.onnx import torch_probabilities

pytest.importorskip("litert_torch", reason="LiteRT exports need the export extra")


@pytest.mark.parametrize(
    ("fmt", "int8"),
    [
        ("onnx", "weights"),
        ("onnx-int8", "weights"),
        ("onnx-int8", "static"),
        ("tflite", "weights"),
        ("tflite-fp16", "weights"),
        ("tflite-int8", "weights"),
    ],
)
def test_export_format_through_its_runtime(trained, tmp_path, fmt, int8, capsys):
    ckpt, model, images = trained
    out = tmp_path / f"m.{fmt}"
    assert main(["export", str(ckpt), "--format", fmt, "--int8", int8, "--out", str(out)]) == 0
    assert "check against torch" in capsys.readouterr().out
    want = torch_probabilities(model, images)
    if fmt.startswith("onnx"):
        from ferkit.runtime import Recognizer

        rec = Recognizer.from_file(out)
        got = rec.probabilities(images)
        assert rec.labels[0] == "angry" and json.loads(rec.metadata["ferkit_contract"])["input"]["shape"][1:] == [
            1,
            48,
            48,
        ]
        if fmt == "onnx-int8":
            scheme = json.loads(rec.metadata["quantization"])
            assert scheme["weights"] == "int8" and scheme["activations"] == {"weights": "int16", "static": "int8"}[int8]
    else:
        from ferkit.export.tflite_runtime import TFLiteModel
        from ferkit.metrics import softmax

        tfl = TFLiteModel(out)
        got = softmax(tfl.logits(images).astype(np.float64))
        sidecar = json.loads(out.with_name(out.name + ".json").read_text())
        assert sidecar["ferkit_contract"]["labels"][6] == "neutral" and tfl.contract["output"]["name"] == "logits"
        assert sidecar["tensors"]["input"]["shape"] == [1, 1, 48, 48]
    if fmt in ("onnx", "tflite"):
        assert np.abs(got - want).max() < 1e-4
    elif fmt == "tflite-fp16":
        assert np.abs(got - want).max() < 1e-2
    else:
        assert (got.argmax(1) == want.argmax(1)).mean() >= 0.99


def test_int8_check_refuses_a_bad_quantisation(trained, tmp_path):
    from ferkit.export.onnx import ExportError, check_int8_agreement

    _, model, images = trained
    shuffled = np.roll(torch_probabilities(model, images), 1, axis=1)
    with pytest.raises(ExportError, match="agrees with torch on only"):
        check_int8_agreement(model, shuffled, images, "tflite-int8")


def test_truncated_tflite_is_a_clear_error(trained, tmp_path):
    from ferkit.export.tflite_runtime import TFLiteModel

    ckpt, _, _ = trained
    out = tmp_path / "m.tflite"
    assert main(["export", str(ckpt), "--format", "tflite", "--out", str(out)]) == 0
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(out.read_bytes()[: out.stat().st_size // 3])
    with pytest.raises(FerkitError, match="not a loadable LiteRT model"):
        TFLiteModel(broken)
    with pytest.raises(FerkitError, match="no such model file"):
        TFLiteModel(tmp_path / "missing.tflite")


def test_traced_exports_crop_with_constant_slices():
    """Every export traces the centre crop; its offsets must be constants, not int casts of traced shapes (which
    coremltools cannot convert: 'only 0-dimensional arrays can be converted to Python scalars')."""
    import torch

    from ferkit.export.onnx import wrap_for_export
    from ferkit.models import create_model

    wrapped = wrap_for_export(create_model("fast_fer_s"))  # a 40 px crop of the 48 px face
    graph = torch.jit.trace(wrapped, torch.zeros(1, 1, 48, 48)).inlined_graph
    assert "aten::Int" not in str(graph) and "aten::slice" in str(graph)


def test_bundle_replaces_the_default_only_when_it_is_better_on_publictest(trained, tmp_path, capsys):
    from ferkit.runtime import Recognizer

    ckpt, _, _ = trained
    pkg, card, golden = tmp_path / "weights", tmp_path / "CARD.md", tmp_path / "tests" / "golden" / "g.json"
    pkg.mkdir()
    golden.parent.mkdir(parents=True)
    args = ["bundle", str(ckpt), "--package-dir", str(pkg), "--card", str(card), "--golden", str(golden)]
    assert main(args) == 0  # nothing bundled yet: anything goes in
    rec = Recognizer.from_file(pkg / "ferkit_default.onnx")
    evaluation = json.loads(rec.metadata["evaluation"])
    assert evaluation["PublicTest"]["accuracy"] > 0.9 and rec.temperature == pytest.approx(evaluation["temperature"])
    assert "| PrivateTest |" in card.read_text() and len(json.loads(golden.read_text())["probabilities"]) == 8
    capsys.readouterr()
    assert main(args) == 2  # the same model again is no improvement
    assert "not above the bundled model's" in capsys.readouterr().err
    assert main([*args, "--force"]) == 0


def test_bundle_by_name_fills_the_mobile_slot_beside_the_default(trained, tmp_path, monkeypatch):
    """`ferkit bundle model.pt --name mobile`: its own file, card and golden outputs; the default is untouched."""
    from ferkit.export.bundle import bundled_paths
    from ferkit.runtime import Recognizer

    ckpt, _, _ = trained
    pkg = tmp_path / "weights"
    pkg.mkdir()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "docs").mkdir()
    (tmp_path / "tests" / "golden").mkdir(parents=True)
    assert main(["bundle", str(ckpt), "--name", "mobile", "--package-dir", str(pkg)]) == 0
    paths = bundled_paths("mobile", pkg)
    assert paths.model == pkg / "ferkit_mobile.onnx" and not (pkg / "ferkit_default.onnx").exists()
    assert "ferkit_mobile.onnx" in paths.card.read_text() and paths.card == Path("docs/MODEL_CARD_mobile.md")
    golden = json.loads(paths.golden.read_text())
    assert golden["model_sha256"] and paths.golden == Path("tests/golden/mobile_model.json")
    assert json.loads(Recognizer.from_file(paths.model).metadata["evaluation"])["PublicTest"]["n"] > 0
    paths.card.unlink()
    data = str(ckpt.parent / "fer2013.csv")
    assert main(["bundle", str(paths.model), "--data", data]) == 0  # re-measured in place: its own card, by its name
    assert paths.card.is_file() and not Path("docs/MODEL_CARD.md").exists()


def test_bundle_int8_ships_the_full_integer_file_and_its_phone_files(trained, tmp_path, capsys):
    """`ferkit bundle model.pt --name mobile --int8`: the bundled file runs QLinearConv (no float Conv), says so in
    its metadata and card; re-measured in place with --phone, its float rebuild (the dequantized weights) agrees with
    it and the LiteRT file is made from it, no checkpoint needed."""
    import onnx

    from ferkit.runtime import Recognizer

    ckpt, _, images = trained
    data = str(ckpt.parent / "fer2013.csv")
    pkg, card, golden = tmp_path / "weights", tmp_path / "CARD.md", tmp_path / "tests" / "golden" / "g.json"
    pkg.mkdir()
    golden.parent.mkdir(parents=True)
    common = ["--package-dir", str(pkg), "--card", str(card), "--golden", str(golden), "--data", data]
    assert main(["bundle", str(ckpt), "--name", "mobile", "--int8", *common]) == 0
    path = pkg / "ferkit_mobile.onnx"
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert "QLinearConv" in ops and "Conv" not in ops
    rec = Recognizer.from_file(path)
    assert json.loads(rec.metadata["quantization"])["activations"] == "int8"
    assert "Full-integer file" in card.read_text() and rec.probabilities(images).shape == (len(images), 7)
    assert main(["bundle", str(path), *common, "--phone"]) == 0
    phone = json.loads(Recognizer.from_file(path).metadata["phone_files"])
    assert phone[0]["format"] == "tflite-int8" and phone[0]["top1_agreement_privatetest"] >= 0.99
    capsys.readouterr()
    assert main(["bundle", str(path), *common, "--int8"]) == 2  # an .onnx is re-measured, never re-quantised
    assert "--int8 quantises a model.pt" in capsys.readouterr().err


def test_bundle_of_an_unbundled_onnx_keeps_the_bundled_cards(trained, tmp_path, monkeypatch):
    """`ferkit bundle student.onnx` (not a bundled file, no --name): measured in place, its card beside it; the
    default's card and golden outputs are left alone."""
    from ferkit.runtime import Recognizer

    ckpt, _, _ = trained
    monkeypatch.chdir(tmp_path)
    (tmp_path / "docs").mkdir()
    (tmp_path / "tests" / "golden").mkdir(parents=True)
    onnx_path = tmp_path / "student.onnx"
    assert main(["export", str(ckpt), "--out", str(onnx_path)]) == 0
    assert main(["bundle", str(onnx_path), "--data", str(ckpt.parent / "fer2013.csv")]) == 0
    assert (tmp_path / "student.card.md").is_file() and not any((tmp_path / "docs").iterdir())
    assert not any((tmp_path / "tests" / "golden").iterdir())
    assert json.loads(Recognizer.from_file(onnx_path).metadata["evaluation"])["PublicTest"]["n"] > 0


def test_bundle_names_are_checked(capsys):
    with pytest.raises(SystemExit):
        main(["bundle", "x.pt", "--name", "tiny"])
    assert "invalid choice: 'tiny'" in capsys.readouterr().err


def test_bundle_remeasures_an_onnx_in_place_and_writes_phone_files(trained, tmp_path, capsys):
    """`ferkit bundle MODEL.onnx --phone`: no checkpoint; metadata, card and phone files from the ONNX file alone."""
    from ferkit.runtime import Recognizer

    ckpt, _, _ = trained
    data = str(ckpt.parent / "fer2013.csv")
    onnx_path = tmp_path / "weights" / "m.onnx"
    assert main(["export", str(ckpt), "--out", str(onnx_path)]) == 0
    card, golden = tmp_path / "CARD.md", tmp_path / "tests" / "golden" / "g.json"
    golden.parent.mkdir(parents=True)
    args = ["bundle", str(onnx_path), "--data", data, "--card", str(card), "--golden", str(golden), "--phone"]
    assert main(args) == 0
    meta = Recognizer.from_file(onnx_path).metadata
    phone = json.loads(meta["phone_files"])
    assert [r["format"] for r in phone] == ["tflite-int8"] and phone[0]["top1_agreement_privatetest"] >= 0.99
    assert (onnx_path.parent / phone[0]["file"]).is_file() and (onnx_path.parent / phone[0]["sidecar"]).is_file()
    text = card.read_text()
    assert "## Phone files" in text and phone[0]["file"] in text and "unseen" in text
    assert json.loads(meta["evaluation"])["PrivateTest"]["unseen"]["n"] > 0


def test_fp16_weights_halve_the_onnx_file_and_rebuild_exactly(trained, tmp_path):
    """The bundled models' storage: float16 initializers cast back at load; within FP16_PARITY_TOL of torch, about
    half the bytes, and model_from_onnx rebuilds the same (rounded) network, so the phone files still come from it."""
    import onnx

    from ferkit.data import load_fer2013, make_splits
    from ferkit.export.onnx import FP16_PARITY_TOL
    from ferkit.export.pipeline import export_checkpoint
    from ferkit.models.from_onnx import check_rebuild, model_from_onnx

    ckpt, _, _ = trained
    full, half = tmp_path / "fp32.onnx", tmp_path / "fp16.onnx"
    export_checkpoint(ckpt, full, None)
    parity = export_checkpoint(ckpt, half, None, fp16_weights=True)
    assert parity["weights"] == "float16" and parity["max_abs_prob_diff"] < FP16_PARITY_TOL
    assert half.stat().st_size < 0.6 * full.stat().st_size
    graph = onnx.load(str(half)).graph
    stored = {i.name for i in graph.initializer if i.data_type == onnx.TensorProto.FLOAT16}
    assert stored and stored == {n.input[0] for n in graph.node if n.op_type == "Cast" and n.input[0] in stored}
    model, _ = model_from_onnx(half)
    faces = make_splits(load_fer2013(ckpt.parent / "fer2013.csv"), "official").val.images[:16]
    assert check_rebuild(model, half, faces) < 1e-4


@pytest.mark.parametrize(
    ("cfg", "expected"),
    [
        ({}, []),
        ({"accelerator": "auto", "teacher_logits": []}, []),
        (
            {
                "teacher_logits": ["/tmp/teachers/run-a", "results/runs/run-b"],
                "distill_alpha": 0.7,
                "distill_temperature": 4.0,
                "accelerator": "gpu",
            },
            ["2 committed runs", "`run-a`, `run-b`", "weight 0.7", "Trained on a GPU"],
        ),
    ],
)
def test_model_card_says_what_shaped_the_weights(cfg, expected):
    from ferkit.export.bundle import _teaching

    text = _teaching(cfg)
    assert all(e in text for e in expected) and (text == "") == (not expected)
