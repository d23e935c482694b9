"""The export pipeline from a checkpoint: load, calibrate, attach the contract and metadata, export, check."""

from __future__ import annotations

import json
from pathlib import Path

PARITY_FACES = 256  # the first 256 PublicTest faces: a fixed batch of real faces


def splits_for(ckpt: dict, data: str | None):
    """(the data file, its official splits): `data`, else the file the checkpoint trained on (checked)."""
    from ferkit.data import load_fer2013, make_splits
    from ferkit.data.source import run_data

    source = run_data(data, ckpt)
    return source, make_splits(load_fer2013(source), "official", seed=ckpt.get("config", {}).get("seed", 42))


def _metadata(model, ckpt: dict, contract: dict, evaluation: dict, data: dict) -> dict:
    """ONNX metadata: no local path is recorded (the data is named by file name and sha256)."""
    import ferkit
    from ferkit.models import count_parameters

    recipe = dict(ckpt.get("config", {}))
    recipe.pop("data", None)
    # Paths of the machine that trained it are not the model's business: keep file names only.
    for key in ("init", "out"):
        if recipe.get(key):
            recipe[key] = Path(recipe[key]).name
    for key in ("teachers", "teacher_logits"):
        recipe[key] = [Path(t).name for t in recipe.get(key, [])]
    split = recipe.get("split", "official")
    return {
        "ferkit_contract": json.dumps(contract),
        "model_name": ckpt["model"],
        "ferkit_version": ferkit.__version__,
        "recipe": json.dumps(recipe),
        "parameters": str(count_parameters(model)["trainable"]),
        "training_data": json.dumps(
            {
                **data,
                "split": split,
                "train": "Training" if split == "official" else "80% of Training (seeded)",
                "selection": "PublicTest" if split == "official" else "20% of Training (seeded)",
                "test": "PrivateTest",
            }
        ),
        "evaluation": json.dumps(evaluation),
        "labels": ",".join(contract["labels"]),
    }


def _fit_temperature(model, images, labels) -> float:
    """The softmax temperature minimising the NLL of these (PublicTest) faces."""
    from ferkit.metrics import fit_temperature
    from ferkit.models.predict import predict_logits

    return fit_temperature(predict_logits(model, images), labels)


FORMATS = ("onnx", "onnx-int8", "tflite", "tflite-fp16", "tflite-int8", "coreml")
SUFFIX = {
    "onnx": ".onnx",
    "onnx-int8": ".int8.onnx",
    "tflite": ".tflite",
    "tflite-fp16": ".fp16.tflite",
    "tflite-int8": ".int8.tflite",
    "coreml": ".mlpackage",
}


def resolve_model(name: str | Path) -> Path:
    """A bundled model's name (`default`, `mobile`) or a path: what `ferkit export MODEL` names."""
    from ferkit.bundled import BUNDLED, bundled_model_path

    return bundled_model_path(str(name)) if str(name) in BUNDLED else Path(name)


def output_path(model: str | Path, fmt: str, out: str | Path | None = None) -> Path:
    """`out`, else beside the model with the format's suffix; a bundled model exports into the working folder
    (the installed package folder is not the user's to write into)."""
    from ferkit.bundled import BUNDLED

    if out:
        return Path(out)
    path = resolve_model(model)
    return Path(path.name if str(model) in BUNDLED else path).with_suffix(SUFFIX[fmt])


def export_checkpoint(
    model_path: Path,
    out: Path,
    data: str | None,
    evaluation: dict | None = None,
    temperature: float | str = 1.0,
    margin: float = 1.0,
    fmt: str = "onnx",
    int8_static: bool = False,
    fp16_weights: bool = False,
) -> dict:
    """model.pt -> `fmt` with metadata, proven against torch on real faces (int8: agreement on PrivateTest).

    temperature "fit": fitted on PublicTest alone (PrivateTest is never read to calibrate).
    fp16_weights: an "onnx" file stores its weights as float16 (the bundled models; export.onnx.store_weights_fp16).
    """
    import tempfile

    from ferkit.data.calibration import calibration_faces
    from ferkit.export.onnx import INT8_AGREEMENT, contract, export_onnx, export_onnx_int8
    from ferkit.models.checkpoint import load_model

    if Path(model_path).suffix == ".onnx":  # a shipped model: rebuilt from its own graph, checked against it
        from ferkit.models.from_onnx import check_rebuild, model_from_onnx

        model, ckpt = model_from_onnx(model_path)
        source, splits = splits_for(ckpt, data)
        # an int8 file: its float rebuild must agree with it on all of PublicTest, as an int8 export must with torch
        quantized = "quantization" in ckpt["onnx_metadata"]
        faces = splits.val.images if quantized else splits.val.images[:PARITY_FACES]
        check_rebuild(model, Path(model_path), faces, min_agreement=INT8_AGREEMENT if quantized else None)
        shipped = json.loads(ckpt["onnx_metadata"]["ferkit_contract"])
        if temperature == 1.0:  # keep the shipped calibration unless asked otherwise
            temperature = float(shipped.get("temperature", 1.0))
        evaluation = evaluation or json.loads(ckpt["onnx_metadata"].get("evaluation", "{}"))
    else:
        model, ckpt = load_model(model_path)
        source, splits = splits_for(ckpt, data)
    if temperature == "fit":
        temperature = _fit_temperature(model, splits.val.images, splits.val.labels)
        print(f"temperature fitted on PublicTest: {temperature:.3f}")
    from ferkit.data.source import data_identity

    identity = data_identity(source)
    meta = _metadata(model, ckpt, contract(model, temperature, margin), evaluation or {}, identity)
    parity_faces = splits.val.images[:PARITY_FACES]
    if fmt == "onnx":
        return export_onnx(model, out, meta, parity_faces, fp16_weights=fp16_weights)
    if fmt == "coreml":
        from ferkit.export.coreml import export_coreml

        return export_coreml(model, out, meta)
    calib = calibration_faces(splits.train.images, splits.train.labels)
    # The float intermediate of an int8 export lives in a private folder removed whatever happens.
    with tempfile.TemporaryDirectory(prefix="ferkit-export-") as tmp:
        work = Path(tmp)
        if fmt == "onnx-int8":
            export_onnx(model, work / "fp32.onnx", meta, parity_faces)
            qat = bool(ckpt.get("config", {}).get("qat", False))
            test = splits.test.images
            return export_onnx_int8(model, work / "fp32.onnx", out, calib, test, qat=qat, static=int8_static)
        from ferkit.export.litert import export_tflite, export_tflite_int8

        if fmt in ("tflite", "tflite-fp16"):
            return export_tflite(model, out, meta, parity_faces, fp16=fmt == "tflite-fp16")
        if fmt == "tflite-int8":
            export_tflite(model, work / "fp32.tflite", meta, parity_faces)
            return export_tflite_int8(model, work / "fp32.tflite", out, meta, calib, splits.test.images, int8_static)
    raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
