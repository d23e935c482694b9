"""`ferkit export` and `ferkit bundle` (export the best model into the package, with its model card)."""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from pathlib import Path

from ferkit.errors import FerkitError
from ferkit.labels import CLASS_NAMES

PARITY_FACES = 256  # the first 256 PublicTest faces: a fixed batch of real faces


def _splits_for(ckpt: dict, data: str | None):
    from ferkit.data import load_fer2013, make_splits

    config = ckpt.get("config", {})
    return make_splits(load_fer2013(data or config.get("data")), "official", seed=config.get("seed", 42))


def _metadata(model, ckpt: dict, contract: dict, evaluation: dict, source: str) -> dict:
    import ferkit

    return {
        "ferkit_contract": json.dumps(contract),
        "model_name": ckpt["model"],
        "ferkit_version": ferkit.__version__,
        "recipe": json.dumps(ckpt.get("config", {})),
        "training_data": json.dumps(
            {
                "dataset": "FER2013",
                "source": source,
                "train": "Training",
                "selection": "PublicTest",
                "test": "PrivateTest",
            }
        ),
        "evaluation": json.dumps(evaluation),
        "labels": ",".join(contract["labels"]),
    }


def _fit_temperature(model, images, labels) -> float:
    """The softmax temperature minimising the NLL of these (PublicTest) faces."""
    from ferkit.evaluate import predict_logits
    from ferkit.metrics import fit_temperature

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


def export_checkpoint(
    model_path: Path,
    out: Path,
    data: str | None,
    evaluation: dict | None = None,
    temperature: float | str = 1.0,
    margin: float = 1.0,
    fmt: str = "onnx",
    int8_static: bool = False,
) -> dict:
    """model.pt -> `fmt` with metadata, proven against torch on real faces (int8: agreement on PrivateTest).

    temperature "fit": fitted on PublicTest alone (PrivateTest is never read to calibrate).
    """
    import tempfile

    from ferkit.export import calibration_faces, contract, export_onnx, export_onnx_int8
    from ferkit.train import load_model

    model, ckpt = load_model(model_path)
    splits = _splits_for(ckpt, data)
    if temperature == "fit":
        temperature = _fit_temperature(model, splits.val.images, splits.val.labels)
        print(f"temperature fitted on PublicTest: {temperature:.3f}")
    meta = _metadata(model, ckpt, contract(model, temperature, margin), evaluation or {}, splits.val.source)
    parity_faces = splits.val.images[:PARITY_FACES]
    if fmt == "onnx":
        return export_onnx(model, out, meta, parity_faces)
    if fmt == "coreml":
        from ferkit.export_coreml import export_coreml

        return export_coreml(model, out, meta)
    calib = calibration_faces(splits.train.images, splits.train.labels)
    work = Path(tempfile.mkdtemp(prefix="ferkit-export-"))
    if fmt == "onnx-int8":
        export_onnx(model, work / "fp32.onnx", meta, parity_faces)
        qat = bool(ckpt.get("config", {}).get("qat", False))
        return export_onnx_int8(model, work / "fp32.onnx", out, calib, splits.test.images, qat=qat, static=int8_static)
    from ferkit.export_litert import export_tflite, export_tflite_int8

    if fmt in ("tflite", "tflite-fp16"):
        return export_tflite(model, out, meta, parity_faces, fp16=fmt == "tflite-fp16")
    if fmt == "tflite-int8":
        export_tflite(model, work / "fp32.tflite", meta, parity_faces)
        return export_tflite_int8(model, work / "fp32.tflite", out, meta, calib, splits.test.images, int8_static)
    raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


def _temperature_arg(value: str) -> float | str:
    """`--temperature`: a number, or `fit` (fitted on PublicTest by NLL, as `ferkit bundle` does)."""
    if value == "fit":
        return value
    try:
        t = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is neither a number nor 'fit'") from None
    if not t > 0:
        raise argparse.ArgumentTypeError(f"a softmax temperature must be > 0, got {value}")
    return t


def cmd_export(args: argparse.Namespace) -> int:
    out = Path(args.out or Path(args.model).with_suffix(SUFFIX[args.format]))
    check = export_checkpoint(
        Path(args.model),
        out,
        args.data,
        temperature=args.temperature,
        margin=args.margin,
        fmt=args.format,
        int8_static=args.int8 == "static",
    )
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB); check against torch: {check}")
    return 0


def _evaluate_splits(model_path: Path, data: str | None) -> tuple[dict, float]:
    """PublicTest and PrivateTest reports (plain and flip-TTA) and the temperature fitted on PublicTest."""
    from ferkit.evaluate import predict_logits
    from ferkit.metrics import classification_report, expected_calibration_error, fit_temperature, softmax
    from ferkit.train import load_model

    model, ckpt = load_model(model_path)
    splits = _splits_for(ckpt, data)
    parts = {"PublicTest": splits.val, "PrivateTest": splits.test}
    logits = {name: predict_logits(model, part.images) for name, part in parts.items()}
    temperature = fit_temperature(logits["PublicTest"], splits.val.labels)
    out = {}
    for name, part in parts.items():
        r = classification_report(logits[name], part.labels)
        r["ece_calibrated"] = expected_calibration_error(softmax(logits[name], temperature), part.labels)
        r["accuracy_flip_tta"] = classification_report(predict_logits(model, part.images, tta=True), part.labels)[
            "accuracy"
        ]
        out[name] = r
    return out, temperature


def cmd_bundle(args: argparse.Namespace) -> int:
    """Make a trained model the package's default: evaluate, calibrate, export with parity, write the card."""
    from ferkit.runtime import DEFAULT_MODEL

    model_path = Path(args.model)
    reports, temperature = _evaluate_splits(model_path, args.data)
    evaluation = {
        k: {
            m: r[m]
            for m in ("n", "accuracy", "accuracy_flip_tta", "macro_f1", "top2_accuracy", "ece", "ece_calibrated")
        }
        | {"recall": {c: r["per_class"][c]["recall"] for c in CLASS_NAMES}}
        for k, r in reports.items()
    }
    evaluation["temperature"] = temperature
    target = Path(args.package_dir) / DEFAULT_MODEL
    current = _bundled_public_accuracy(target)
    new_acc = evaluation["PublicTest"]["accuracy"]
    if current is not None and new_acc <= current and not args.force:
        raise FerkitError(
            f"{model_path} scores {new_acc:.4f} on PublicTest, not above the bundled model's {current:.4f}; "
            "the default stays (--force replaces it anyway)"
        )
    tmp = target.with_suffix(".new.onnx")
    parity = export_checkpoint(model_path, tmp, args.data, evaluation, temperature, args.margin)
    shutil.move(tmp, target)
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    card = _model_card(model_path, evaluation, parity, digest, target)
    Path(args.card).write_text(card)
    from ferkit.golden import write_golden
    from ferkit.runtime import Recognizer

    if Path(args.golden).parent.parent.is_dir():  # in a source checkout: re-pin the golden test
        print(f"golden outputs: {write_golden(Recognizer.from_file(target), args.golden)}")
    print(card)
    print(f"bundled {target} ({target.stat().st_size / 1e6:.1f} MB); model card: {args.card}")
    return 0


def _bundled_public_accuracy(path: Path) -> float | None:
    """The PublicTest accuracy recorded in the bundled model's metadata; None when there is none to beat."""
    from ferkit.runtime import ModelFileError, Recognizer

    try:
        evaluation = json.loads(Recognizer.from_file(path).metadata.get("evaluation", "{}"))
    except (ModelFileError, json.JSONDecodeError):
        return None
    return evaluation.get("PublicTest", {}).get("accuracy")


def _acc_row(name: str, r: dict) -> str:
    keys = ("accuracy", "accuracy_flip_tta", "macro_f1", "top2_accuracy", "ece", "ece_calibrated")
    return f"| {name} | {r['n']} | " + " | ".join(f"{r[k]:.4f}" for k in keys) + " |"


def _model_card(model_path: Path, ev: dict, parity: dict, digest: str, target: Path) -> str:
    from ferkit.faces import FER_EYE_DISTANCE
    from ferkit.models import count_parameters
    from ferkit.train import load_model

    model, ckpt = load_model(model_path)
    ckpt.setdefault("summary", {"parameters": count_parameters(model)})
    cfg, summary = ckpt.get("config", {}), ckpt.get("summary", {})
    phases = ", ".join(f"{p['phase']} ({p['epochs_run']} epochs)" for p in summary.get("phases", []))
    pub, priv = ev["PublicTest"], ev["PrivateTest"]
    rows = "\n".join(f"| {c} | {pub['recall'][c]:.3f} | {priv['recall'][c]:.3f} |" for c in CLASS_NAMES)
    return f"""# Model card: ferkit default model

Generated by `ferkit bundle {model_path}`; every figure below was computed by that command.

- File: `src/ferkit/weights/{target.name}` ({target.stat().st_size / 1e6:.1f} MB, sha256 `{digest[:16]}…`)
- Architecture: `{ckpt["model"]}` ({summary.get("parameters", {}).get("trainable", 0):,} parameters)
- Recipe: `{cfg.get("name")}` (split `{cfg.get("split")}`, seed {cfg.get("seed")}, {cfg.get("optimizer")}
  lr {cfg.get("lr")}, batch {cfg.get("batch_size")}); phases run: {phases or "n/a"}
- Data: FER2013 (Kaggle, ICML 2013 challenge), 48x48 gray faces, 7 expressions:
  {", ".join(f"{i} {c}" for i, c in enumerate(CLASS_NAMES))}.
- Protocol: trained on `Training` (28,709), every choice (best epoch, temperature) on `PublicTest`,
  `PrivateTest` read once for this card. The test sets are kept as published (7% of PrivateTest images also
  appear in Training).
- Input contract (in the ONNX metadata `ferkit_contract`): float32 (N, 1, 48, 48) raw gray levels 0..255 of a
  face aligned as FER2013 (eyes level, {FER_EYE_DISTANCE} px apart); normalisation is inside the graph; output
  logits; probabilities = softmax(logits / T) with T = {ev["temperature"]:.3f} fitted on PublicTest.
- Export parity with torch (ONNX Runtime, {parity["faces"]} PublicTest faces):
  max |Δp| = {parity["max_abs_prob_diff"]:.1e}.

## Accuracy

| split | n | accuracy | flip-TTA | macro-F1 | top-2 | ECE | ECE after T |
|---|---|---|---|---|---|---|---|
{_acc_row("PublicTest", pub)}
{_acc_row("PrivateTest", priv)}

## Recall per class

| class | PublicTest | PrivateTest |
|---|---|---|
{rows}

## Known limits
- FER2013 was gathered by web image search: mostly posed or staged faces, skewed towards young adults and
  lighter skin; its labels are noisy (human accuracy is about 65 ± 5%) and 51 duplicate groups carry conflicting labels.
- Disgust is rare (436 training images, 55 in PrivateTest): expect its recall to be the least reliable.
- Fear is often confused with sad and surprise; neutral with sad.
- The model sees a 48x48 gray face: colour, context and motion are not used. Faces that YuNet cannot find
  (strong profile, heavy occlusion, very small) give no prediction.
- Scores for the game are probabilities of a 7-way classifier, not a measure of intensity.
"""


def add_export_parsers(stages) -> None:
    ex = stages.add_parser("export", help="export a trained model (ONNX, LiteRT, int8) with a check against torch")
    ex.add_argument("model", help="a run's model.pt")
    ex.add_argument("--format", default="onnx", choices=FORMATS, help="default onnx")
    ex.add_argument(
        "--int8",
        choices=("weights", "static"),
        default="weights",
        help="weights: int8 weights, precise activations (tflite-int8: dynamic range; onnx-int8: int16 activations); "
        "static: full integer, int8 activations calibrated on Training faces",
    )
    ex.add_argument("--out", help="output file (default: beside the model)")
    ex.add_argument("--data", help="FER2013 (parity faces come from PublicTest)")
    ex.add_argument(
        "--temperature",
        type=_temperature_arg,
        default=1.0,
        help="softmax temperature stored in the metadata: a number, or 'fit' to fit it on PublicTest",
    )
    ex.add_argument("--margin", type=float, default=1.0, help="face crop margin stored in the metadata")
    ex.set_defaults(func=cmd_export)
    bd = stages.add_parser(
        "bundle", help="make a trained model the package default (evaluate, calibrate, export, card)"
    )
    bd.add_argument("model", help="a run's model.pt")
    bd.add_argument("--data", help="FER2013 file or folder")
    bd.add_argument("--margin", type=float, default=1.0, help="face crop margin (tuned: see docs/RESULTS.md)")
    bd.add_argument("--package-dir", default=str(Path(__file__).resolve().parents[1] / "weights"))
    bd.add_argument("--card", default="docs/MODEL_CARD.md")
    bd.add_argument("--golden", default="tests/golden/default_model.json", help="golden outputs to re-pin")
    bd.add_argument("--force", action="store_true", help="replace the default even if it scores higher on PublicTest")
    bd.set_defaults(func=cmd_bundle)
