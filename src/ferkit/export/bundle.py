"""Measuring a bundled ONNX model in place: evaluation metadata, temperature, model card and golden outputs.

Everything is measured through the runtime (ONNX Runtime, no torch), on the data file named by its file name and
sha256 (never a local path), so a shipped model can be re-measured when the data changes, without its checkpoint.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ferkit.data.source import data_identity
from ferkit.labels import CLASS_NAMES


@dataclass
class Measured:
    evaluation: dict  # PublicTest / PrivateTest figures (official and "unseen") and the fitted temperature
    data: dict  # the data set by name and sha256
    facts: dict  # data facts quoted by the card, computed from the same file


def measure(recognizer, data: str | None = None) -> Measured:
    """Fit the temperature on PublicTest, then evaluate PublicTest and PrivateTest (plain and flip) in ONNX Runtime."""
    from ferkit.data import load_fer2013, locate, make_splits, quality_report
    from ferkit.data.quality import unseen_mask
    from ferkit.metrics import fit_temperature, split_evaluation

    source = locate(data)
    ds = load_fer2013(source)
    splits = make_splits(ds, "official")
    parts = {"PublicTest": splits.val, "PrivateTest": splits.test}
    logits = {k: recognizer.logits(p.images) for k, p in parts.items()}
    flips = {k: recognizer.logits(p.images[:, :, ::-1].copy()) for k, p in parts.items()}
    temperature = fit_temperature(logits["PublicTest"], splits.val.labels)  # PrivateTest never calibrates
    evaluation: dict = {
        k: split_evaluation(
            logits[k], (logits[k] + flips[k]) / 2, p.labels, unseen_mask(p.images, splits.train.images), temperature
        )
        for k, p in parts.items()
    }
    evaluation["temperature"] = temperature
    q = quality_report(ds)
    facts = {
        "training_images": len(splits.train),
        "private_in_training": q.private_in_training,
        "public_in_training": q.public_in_training,
        "conflicting_groups": q.conflicting_groups,
        "disgust_training": int(splits.train.class_counts()[CLASS_NAMES.index("disgust")]),
        "disgust_private": int(splits.test.class_counts()[CLASS_NAMES.index("disgust")]),
    }
    return Measured(evaluation, data_identity(source), facts)


def write_onnx_metadata(path: Path, updates: dict[str, str]) -> None:
    """Replace metadata entries of an ONNX file in place: written beside it, fsynced, then renamed over it."""
    from ferkit.errors import require

    onnx = require("onnx", "export")
    proto = onnx.load(str(path))
    kept = [(p.key, p.value) for p in proto.metadata_props if p.key not in updates]
    del proto.metadata_props[:]
    for key, value in [*kept, *updates.items()]:
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("wb") as f:
        f.write(proto.SerializeToString())
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


def apply_measurement(path: Path, recognizer, m: Measured) -> None:
    """Store the measurement in the model file: evaluation, the data it was measured on, the new temperature."""
    contract = dict(recognizer.contract, temperature=m.evaluation["temperature"])
    training = json.loads(recognizer.metadata.get("training_data", "{}"))
    training.pop("source", None)  # earlier files recorded a local path; the data is named by sha256 instead
    training.update(m.data)
    training.setdefault("train", "Training")
    training.setdefault("selection", "PublicTest")
    training.setdefault("test", "PrivateTest")
    write_onnx_metadata(
        path,
        {
            "ferkit_contract": json.dumps(contract),
            "evaluation": json.dumps(m.evaluation),
            "training_data": json.dumps(training),
            "data_facts": json.dumps(m.facts),
        },
    )


def _parameters(model_name: str, metadata: dict) -> int | None:
    if "parameters" in metadata:
        return int(metadata["parameters"])
    try:  # the registry rebuilds the architecture (torch layer); without torch the card says n/a
        from ferkit.models import count_parameters, create_model_from_metadata

        return count_parameters(create_model_from_metadata(model_name, metadata))["trainable"]
    except ImportError:
        return None


def _acc_row(name: str, r: dict) -> str:
    keys = ("accuracy", "accuracy_flip_tta", "macro_f1", "top2_accuracy", "ece", "ece_calibrated")
    u = r["unseen"]
    return (
        f"| {name} | {r['n']} | "
        + " | ".join(f"{r[k]:.4f}" for k in keys)
        + f" | {u['accuracy']:.4f} (n {u['n']}) | {u['accuracy_flip_tta']:.4f} |"
    )


def _teaching(cfg: dict) -> str:
    """The card's lines on what else shaped the weights: teachers' committed logits, and a GPU (its minutes are not
    this CPU's). Empty for a plain CPU run."""
    lines = []
    if cfg.get("teacher_logits"):
        names = ", ".join(f"`{Path(t).name}`" for t in cfg["teacher_logits"])
        lines.append(
            f"- Distilled (weight {cfg.get('distill_alpha')}, temperature {cfg.get('distill_temperature')}) from the "
            f"Training logits of {len(cfg['teacher_logits'])} committed runs (results/runs/): {names}\n"
        )
    if cfg.get("accelerator") in ("gpu", "cuda"):
        lines.append("- Trained on a GPU (the recipe's accelerator); docs/RESULTS.md names the machine\n")
    return "".join(lines)


def model_card(path: Path, recognizer, command: str, parity: dict | None = None) -> str:
    """The card of a bundled model, every figure read from the file's own metadata (measured by `measure`)."""
    from ferkit.faces import FER_EYE_DISTANCE
    from ferkit.golden import file_sha256

    meta = recognizer.metadata
    ev, data = json.loads(meta["evaluation"]), json.loads(meta["training_data"])
    facts, cfg = json.loads(meta.get("data_facts", "{}")), json.loads(meta.get("recipe", "{}"))
    name = meta.get("model_name", "?")
    params = _parameters(name, meta)
    pub, priv = ev["PublicTest"], ev["PrivateTest"]
    rows = "\n".join(f"| {c} | {pub['recall'][c]:.3f} | {priv['recall'][c]:.3f} |" for c in CLASS_NAMES)
    phases = ", ".join(f"{p['name']} ({p['epochs']} epochs)" for p in cfg.get("phases", []))
    share = facts["private_in_training"] / priv["n"]
    phone = json.loads(meta.get("phone_files", "[]"))
    phone_rows = "\n".join(
        f"| `{r['file']}` (+ `{r['sidecar']}`) | {r['format']} | {r['MB']:.2f} | {r['top1_agreement_privatetest']:.4f} "
        f"| {r['ms_per_face']:.2f} |"
        for r in phone
    )
    phone_block = (
        "\n## Phone files (no training needed)\n\n"
        "Made by `ferkit bundle --phone` from this ONNX file (rebuilt in torch from its own weights), beside it in\n"
        "`src/ferkit/weights/`. Agreement: top-1 against this ONNX model on PrivateTest; latency: LiteRT interpreter,\n"
        "batch 1, 2 threads, median of 200 faces on the machine that ran the command.\n\n"
        "| file | format | MB | top-1 agreement | ms per face |\n|---|---|---|---|---|\n" + phone_rows + "\n"
        if phone
        else ""
    )
    parity_line = ""
    if parity and parity.get("weights") == "int8":
        parity_line = (
            f"- Full-integer file (int8 weights, uint8 activations; `quantization` in its metadata): picks torch's "
            f"top expression on {parity['top1_agreement']:.2%} of {parity['faces']} PrivateTest faces "
            f"(max |Δp| = {parity['max_abs_prob_diff']:.2f}).\n"
        )
    elif parity:
        parity_line = (
            f"- Export parity with torch (ONNX Runtime, {parity['faces']} PublicTest faces): "
            f"max |Δp| = {parity['max_abs_prob_diff']:.1e}; weights stored as {parity.get('weights', 'float32')}"
            f"{' (cast to float32 when loaded)' if parity.get('weights') == 'float16' else ''}.\n"
        )
    teaching = _teaching(cfg)
    return f"""# Model card: {path.name}

Generated by `{command}`; every figure below was computed by that command, through ONNX Runtime.

- File: `src/ferkit/weights/{path.name}` ({path.stat().st_size / 1e6:.1f} MB, sha256 `{file_sha256(path)[:16]}…`)
- Architecture: `{name}` ({f"{params:,}" if params else "n/a"} parameters)
- Recipe: `{cfg.get("name")}` (split `{cfg.get("split")}`, seed {cfg.get("seed")}, {cfg.get("optimizer")}
  lr {cfg.get("lr")}, batch {cfg.get("batch_size")}); phases: {phases or "n/a"}
{teaching}- Data: {data["dataset"]} (Kaggle, ICML 2013 challenge), file `{data["file"]}`, sha256 `{data["sha256"]}`;
  48x48 gray faces, 7 expressions: {", ".join(f"{i} {c}" for i, c in enumerate(CLASS_NAMES))}.
- Protocol: trained on `Training` ({facts["training_images"]:,}), every choice (best epoch, temperature) on
  `PublicTest`, `PrivateTest` read for this card. The test sets are kept as published: {facts["private_in_training"]}
  PrivateTest images ({share:.1%}) and {facts["public_in_training"]} PublicTest images also appear in Training;
  "unseen" is the same metric on the test images that do not.
- Input contract (in the ONNX metadata `ferkit_contract`): float32 (N, 1, 48, 48) raw gray levels 0..255 of a
  face aligned as FER2013 (eyes level, {FER_EYE_DISTANCE} px apart); normalisation is inside the graph; output
  logits; probabilities = softmax(logits / T) with T = {ev["temperature"]:.3f} fitted on PublicTest.
{parity_line}
## Accuracy

| split | n | accuracy | flip-TTA | macro-F1 | top-2 | ECE | ECE after T | unseen | unseen flip |
|---|---|---|---|---|---|---|---|---|---|
{_acc_row("PublicTest", pub)}
{_acc_row("PrivateTest", priv)}

{phone_block}
## Recall per class

| class | PublicTest | PrivateTest |
|---|---|---|
{rows}

## Known limits
- FER2013 was gathered by web image search: mostly posed or staged faces, skewed towards young adults and
  lighter skin; its labels are noisy (human accuracy is about 65 ± 5%) and {facts["conflicting_groups"]} duplicate
  groups carry conflicting labels.
- Disgust is rare ({facts["disgust_training"]} training images, {facts["disgust_private"]} in PrivateTest): expect its
  recall to be the least reliable.
- The model sees a 48x48 gray face: colour, context and motion are not used. Faces that YuNet cannot find
  (strong profile, heavy occlusion, very small) give no prediction.
- Scores for the game are probabilities of a 7-way classifier, not a measure of intensity.
"""


PHONE_FORMATS = ("tflite-int8",)  # the release files `ferkit bundle --phone` writes beside the ONNX model


def phone_files(path: Path, data: str | None, formats: tuple[str, ...] = PHONE_FORMATS) -> list[dict]:
    """Drop-in phone files of a bundled ONNX model (rebuilt in torch from the file itself, no checkpoint): each is
    checked by its export, then measured here: size, top-1 agreement with the ONNX model on PrivateTest, and the
    median batch-1 latency of the LiteRT interpreter (2 threads, 200 faces)."""
    import statistics
    import time

    from ferkit.data import load_fer2013, make_splits
    from ferkit.export.pipeline import SUFFIX, export_checkpoint
    from ferkit.export.tflite_runtime import TFLiteModel
    from ferkit.runtime import Recognizer

    test = make_splits(load_fer2013(data), "official").test
    reference = Recognizer.from_file(path).logits(test.images).argmax(1)
    rows = []
    for fmt in formats:
        out = path.with_name(path.stem + SUFFIX[fmt])
        export_checkpoint(path, out, data, fmt=fmt)
        model = TFLiteModel(out)
        agree = float((model.logits(test.images).argmax(1) == reference).mean())
        ms = []
        for face in test.images[:200]:
            t = time.perf_counter()
            model.logits(face[None])
            ms.append(1000 * (time.perf_counter() - t))
        rows.append(
            {
                "format": fmt,
                "file": out.name,
                "sidecar": out.name + ".json",
                "MB": round(out.stat().st_size / 1e6, 2),
                "top1_agreement_privatetest": agree,
                "ms_per_face": round(statistics.median(ms), 3),
            }
        )
    return rows


def remeasure(path: Path, data: str | None, card: Path, golden: Path | None, command: str, phone: bool = False) -> str:
    """Re-measure a bundled ONNX model in place; rewrite its card and (in a checkout) its golden outputs; with phone,
    write and measure its drop-in phone files too (listed in the card and in the file's metadata)."""
    from ferkit.golden import write_golden
    from ferkit.runtime import Recognizer

    rec = Recognizer.from_file(path)
    m = measure(rec, data)
    apply_measurement(path, rec, m)
    if phone:
        write_onnx_metadata(path, {"phone_files": json.dumps(phone_files(path, data))})
    rec = Recognizer.from_file(path)
    text = model_card(path, rec, command)
    card.write_text(text)
    if golden is not None:
        write_golden(rec, golden)
    return text


@dataclass
class BundledPaths:
    model: Path  # the ONNX file in the package's weights folder
    card: Path  # its model card
    golden: Path  # its pinned golden outputs (re-pinned only in a source checkout)


def bundled_paths(name: str, package_dir: Path, card: str | None = None, golden: str | None = None) -> BundledPaths:
    """Where the bundled model `name` lives and what documents it: docs/MODEL_CARD.md for the default,
    docs/MODEL_CARD_<name>.md for the others; tests/golden/<name>_model.json."""
    from ferkit.bundled import BUNDLED

    return BundledPaths(
        package_dir / BUNDLED[name],
        Path(card or ("docs/MODEL_CARD.md" if name == "default" else f"docs/MODEL_CARD_{name}.md")),
        Path(golden or f"tests/golden/{name}_model.json"),
    )


def bundle_checkpoint(
    model_path: Path,
    target: Path,
    data: str | None,
    card: Path,
    golden: Path | None,
    command: str,
    margin: float = 1.0,
    force: bool = False,
    int8: bool = False,
) -> str:
    """Export model.pt (parity-checked), measure the export as `remeasure` does, and make it the bundled model at
    `target` only when it beats the one there on PublicTest (or force). int8: the file is the full-integer ONNX
    (export.onnx.export_onnx_int8, static; it must pick torch's top expression on >= 99% of PrivateTest faces)."""
    from ferkit.data.source import run_data
    from ferkit.errors import FerkitError
    from ferkit.export.pipeline import export_checkpoint
    from ferkit.golden import write_golden
    from ferkit.models.checkpoint import load_checkpoint
    from ferkit.runtime import Recognizer

    data = str(run_data(data, load_checkpoint(model_path)))  # measured on the data it trained on
    tmp = target.with_name(f".{target.stem}.{os.getpid()}.new.onnx")
    try:
        if int8:  # QLinearConv on uint8 activations: the phone student's latency (docs/RESULTS.md)
            parity = export_checkpoint(model_path, tmp, data, margin=margin, fmt="onnx-int8", int8_static=True)
            parity["weights"] = "int8"
        else:  # float16-stored weights: half the repository growth of every bundled model, the same float32 kernels
            parity = export_checkpoint(model_path, tmp, data, margin=margin, fp16_weights=True)
        rec = Recognizer.from_file(tmp)
        m = measure(rec, data)
        current = _bundled_public_accuracy(target)
        new_acc = m.evaluation["PublicTest"]["accuracy"]
        if current is not None and new_acc <= current and not force:
            raise FerkitError(
                f"{model_path} scores {new_acc:.4f} on PublicTest, not above the bundled model's {current:.4f}; "
                f"{target.name} stays (--force replaces it anyway)"
            )
        apply_measurement(tmp, rec, m)
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    rec = Recognizer.from_file(target)
    text = model_card(target, rec, command, parity)
    card.write_text(text)
    if golden is not None:
        write_golden(rec, golden)
    return text


def _bundled_public_accuracy(path: Path) -> float | None:
    """The PublicTest accuracy recorded in the bundled model's metadata; None when there is none to beat."""
    from ferkit.runtime import ModelFileError, Recognizer

    try:
        evaluation = json.loads(Recognizer.from_file(path).metadata.get("evaluation", "{}"))
    except (ModelFileError, json.JSONDecodeError):
        return None
    return evaluation.get("PublicTest", {}).get("accuracy")
