"""`ferkit export` and `ferkit bundle` (export the best model into the package, with its model card)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ferkit.bundled import BUNDLED, bundled_name
from ferkit.errors import FerkitError
from ferkit.export.pipeline import FORMATS, export_checkpoint, output_path, resolve_model


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
    out = output_path(args.model, args.format, args.out)
    fmt, static = args.format, args.int8 == "static"
    check = export_checkpoint(
        resolve_model(args.model), out, args.data, None, args.temperature, args.margin, fmt, static
    )
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB); check against torch: {check}")
    return 0


def cmd_bundle(args: argparse.Namespace) -> int:
    """A trained model.pt becomes a bundled model (by --name) if it beats it on PublicTest; an .onnx is re-measured
    in place."""
    from ferkit.export.bundle import bundle_checkpoint, bundled_paths, remeasure

    model_path = Path(args.model)
    name = args.name or bundled_name(model_path) or "default"
    paths = bundled_paths(name, Path(args.package_dir), args.card, args.golden)
    golden = paths.golden if paths.golden.parent.parent.is_dir() else None  # in a source checkout
    if model_path.suffix == ".onnx" and not args.name and bundled_name(model_path) is None:
        # any other ferkit .onnx is measured in place too, but never rewrites a bundled model's card or goldens
        paths.card = Path(args.card) if args.card else model_path.with_suffix(".card.md")
        golden = Path(args.golden) if args.golden else None
    command = f"ferkit bundle {model_path.as_posix() if not model_path.is_absolute() else model_path.name}"
    command += f" --name {args.name}" if args.name else ""
    command += " --phone" if args.phone else ""
    command += " --int8" if args.int8 else ""
    if model_path.suffix == ".onnx":
        if args.int8:
            raise FerkitError("--int8 quantises a model.pt; a bundled .onnx is re-measured as it is")
        card = remeasure(model_path, args.data, paths.card, golden, command, phone=args.phone)
    else:
        card = bundle_checkpoint(
            model_path, paths.model, args.data, paths.card, golden, command, args.margin, args.force, args.int8
        )
    print(card)
    print(f"model card: {paths.card}" + (f"; golden outputs: {golden}" if golden else ""))
    return 0


def add_export_parsers(stages) -> None:
    ex = stages.add_parser("export", help="export a trained model (ONNX, LiteRT, int8) with a check against torch")
    ex.add_argument("model", help="a run's model.pt, a ferkit .onnx, or `default` (the bundled model: no training)")
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
    bd.add_argument("model", help="a run's model.pt, or a bundled .onnx to re-measure in place (no checkpoint needed)")
    bd.add_argument("--data", help="FER2013 file or folder")
    bd.add_argument("--margin", type=float, default=1.0, help="face crop margin (tuned: see docs/RESULTS.md)")
    bd.add_argument("--package-dir", default=str(Path(__file__).resolve().parents[1] / "weights"))
    bd.add_argument(
        "--name", choices=BUNDLED, help="which bundled model a model.pt replaces (default: default; an .onnx: its own)"
    )
    bd.add_argument("--card", help="model card (default: docs/MODEL_CARD.md; docs/MODEL_CARD_<name>.md)")
    bd.add_argument("--golden", help="golden outputs to re-pin (default: tests/golden/<name>_model.json)")
    bd.add_argument("--phone", action="store_true", help="also write and measure the drop-in phone files (.onnx only)")
    bd.add_argument(
        "--force", action="store_true", help="replace the bundled model even if it scores higher on PublicTest"
    )
    bd.add_argument(
        "--int8",
        action="store_true",
        help="bundle the full-integer ONNX file (int8 weights, uint8 activations: the fastest on x86; it must agree "
        "with torch on >= 99%% of PrivateTest faces)",
    )
    bd.set_defaults(func=cmd_bundle)
