"""Prediction files: the knowledge a training run leaves behind once its checkpoint is gone (NumPy only).

A run of note writes `results/runs/<run>/predictions.npz` (float16 logits per official split, rows in the order of
the shared FER2013 file) and `run.json` (what produced them). They are small enough to commit (< 1 MB), so later
sessions ensemble and distil from every earlier session's runs without any checkpoint.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ferkit.errors import PredictionFileError
from ferkit.labels import NUM_CLASSES

if TYPE_CHECKING:
    from ferkit.data import Splits

SPLIT_ROWS: dict[str, int] = {"Training": 28709, "PublicTest": 3589, "PrivateTest": 3589}
PREDICTIONS_FILE = "predictions.npz"
RUN_FILE = "run.json"
FORMAT_VERSION = 1


@dataclass
class RunPredictions:
    name: str
    logits: dict[str, np.ndarray]  # split (or split_tta) -> (n, 7) float32
    info: dict

    def split(self, usage: str, tta: bool = False) -> np.ndarray:
        """(n, 7) logits of a split; with tta, the TTA logits when the run has them, else the single crop."""
        key = f"{usage}_tta"
        return self.logits[key] if tta and key in self.logits else self.logits[usage]


def write_run(out: str | Path, logits: dict[str, np.ndarray], info: dict, rows: dict[str, int] | None = None) -> Path:
    """Write predictions.npz (float16) and run.json into `out`; each is written beside its target then renamed.

    logits: "Training", "PublicTest", "PrivateTest" (n, 7), optionally "PublicTest_tta", "PrivateTest_tta".
    info must name the data file's sha256 (`data_sha256`) and how the Training logits were made.
    """
    out = Path(out)
    rows = rows or SPLIT_ROWS
    _check_arrays(logits, rows, str(out))
    for key in ("data_sha256", "training_logits"):
        if key not in info:
            raise PredictionFileError(f"run info for {out} lacks {key!r}")
    out.mkdir(parents=True, exist_ok=True)
    arrays = {k: np.asarray(v, np.float32).astype(np.float16) for k, v in logits.items()}
    tmp = out / f".{PREDICTIONS_FILE}.{os.getpid()}.tmp.npz"
    np.savez_compressed(tmp, **arrays)
    tmp.replace(out / PREDICTIONS_FILE)
    meta = {"format": FORMAT_VERSION, "name": out.name, **info}
    tmp_json = out / f".{RUN_FILE}.{os.getpid()}.tmp"
    tmp_json.write_text(json.dumps(meta, indent=2, sort_keys=False) + "\n")
    tmp_json.replace(out / RUN_FILE)
    return out


def _check_arrays(logits: dict[str, np.ndarray], rows: dict[str, int], where: str) -> None:
    for split in rows:
        if split not in logits:
            raise PredictionFileError(f"{where}: no {split} logits")
    for key, arr in logits.items():
        split = key.removesuffix("_tta")
        if split not in rows:
            raise PredictionFileError(f"{where}: unknown array {key!r}; expected {', '.join(rows)} (+ _tta)")
        want = (rows[split], NUM_CLASSES)
        if np.shape(arr) != want:
            raise PredictionFileError(f"{where}: {key} has shape {np.shape(arr)}, expected {want}")
        if not np.isfinite(np.asarray(arr, np.float32)).all():
            raise PredictionFileError(f"{where}: {key} holds non-finite logits")


def read_run(path: str | Path, data_sha256: str | None = None, rows: dict[str, int] | None = None) -> RunPredictions:
    """A run folder (or its predictions.npz) -> RunPredictions; refuses predictions made on another data file."""
    path = Path(path)
    folder = path.parent if path.name == PREDICTIONS_FILE else path
    if folder.is_file():
        raise PredictionFileError(
            f"{folder}: not a run folder (give the folder holding {RUN_FILE} and {PREDICTIONS_FILE})"
        )
    try:
        info = json.loads((folder / RUN_FILE).read_text())
        with (folder / PREDICTIONS_FILE).open("rb") as f:
            # np.load takes anything that is not a zip for a pickle and refuses it as one; name the real problem
            if f.read(4) != b"PK\x03\x04":
                raise PredictionFileError(f"{folder}: {PREDICTIONS_FILE} is not an .npz (zip) archive")
            f.seek(0)
            with np.load(f, allow_pickle=False) as z:
                logits = {k: z[k].astype(np.float32) for k in z.files}
    except PredictionFileError:  # already names the problem (and is a ValueError: keep it from the clause below)
        raise
    except FileNotFoundError as e:
        raise PredictionFileError(f"{folder}: not a run folder ({Path(e.filename).name} is missing)") from None
    except (OSError, ValueError, zipfile.BadZipFile) as e:  # JSONDecodeError and a damaged zip member included
        raise PredictionFileError(f"{folder}: unreadable prediction files ({e})") from None
    if not isinstance(info, dict):
        raise PredictionFileError(f"{folder}: {RUN_FILE} holds {type(info).__name__}, not a JSON object")
    _check_arrays(logits, rows or SPLIT_ROWS, str(folder))
    if data_sha256 is not None and info.get("data_sha256") != data_sha256:
        raise PredictionFileError(
            f"{folder}: predictions were made on data sha256 {str(info.get('data_sha256'))[:16]}…, "
            f"not on this file ({data_sha256[:16]}…); its rows would not line up"
        )
    return RunPredictions(folder.name, logits, info)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    z = z - z.max(1, keepdims=True)
    return z - np.log(np.exp(z).sum(1, keepdims=True))


def ensemble_logits(members: list[np.ndarray], weights: list[float] | None = None) -> np.ndarray:
    """Log of the weighted mean probability of the members' (n, 7) logits."""
    weights = weights or [1.0] * len(members)
    probs = sum(w * np.exp(log_softmax(m)) for w, m in zip(weights, members, strict=True)) / sum(weights)
    return np.log(np.clip(probs, 1e-12, None))


@dataclass
class Selection:
    members: list[str]  # run names, in the order they were added
    weights: dict[str, int]  # run name -> times chosen (greedy selection with replacement)
    public_accuracy: float
    history: list[tuple[str, float]]  # (run added, PublicTest accuracy after adding it)
    cv: dict[str, float] | None = None  # cv_select: each rule's held-out accuracy inside PublicTest
    rule: str = "greedy"  # how the members were chosen: "greedy", or "top<k>" (the k best, equal weights)


def greedy_select(public: dict[str, np.ndarray], labels: np.ndarray, max_steps: int = 20) -> Selection:
    """Caruana et al. (2004) forward selection with replacement, scored on PublicTest alone.

    public: run name -> (n, 7) PublicTest logits; labels: PublicTest labels. Nothing else is given to it, so no
    other split can influence the choice. Ties keep the smaller ensemble; accuracy ties break on NLL.
    """
    names = sorted(public)
    if not names:
        raise ValueError("no runs to choose from")
    probs = {n: np.exp(log_softmax(public[n])) for n in names}
    total, counts, history = np.zeros_like(probs[names[0]]), {}, []
    best_score = (-1.0, -np.inf)
    for step in range(max_steps):
        scored = []
        for n in names:
            p = (total + probs[n]) / (step + 1)
            acc = float((p.argmax(1) == labels).mean())
            nll = float(np.log(np.clip(p[np.arange(len(labels)), labels], 1e-12, None)).mean())
            scored.append(((acc, nll), n))
        score, pick = max(scored, key=lambda t: t[0])
        if step > 0 and score <= best_score:
            break
        best_score = score
        total = total + probs[pick]
        counts[pick] = counts.get(pick, 0) + 1
        history.append((pick, score[0]))
    return Selection([h[0] for h in history], counts, best_score[0], history)


def _accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    return float((probs.argmax(1) == labels).mean())


def ranked_runs(probs: dict[str, np.ndarray], labels: np.ndarray, rows: np.ndarray) -> list[str]:
    """Run names by their single accuracy on `rows`, best first (ties: name order, so the ranking is stable)."""
    return sorted(probs, key=lambda n: (-_accuracy(probs[n][rows], labels[rows]), n))


def _top_k_accuracies(probs: dict[str, np.ndarray], order: list[str], labels: np.ndarray, rows: np.ndarray):
    """Accuracy on `rows` of the equal-weight mean of order[:k], for k = 1..len(order), from one running sum."""
    total = np.zeros_like(probs[order[0]][rows])
    for name in order:
        total = total + probs[name][rows]
        yield _accuracy(total, labels[rows])


def half_splits(n: int, repeats: int, seed: int = 0):
    """(fit rows, held-out rows) of `repeats` random halves of n images, each half used both ways, from `seed`."""
    rng, half = np.random.default_rng(seed), n // 2
    for _ in range(repeats):
        perm = rng.permutation(n)
        yield perm[:half], perm[half:]
        yield perm[half:], perm[:half]


def cv_select(public: dict[str, np.ndarray], labels: np.ndarray, repeats: int = 20, seed: int = 0) -> Selection:
    """An ensemble rule chosen by cross-validation inside PublicTest, then applied to all of PublicTest.

    Greedy selection fits its weights to the very images it is scored on, so its PublicTest figure flatters it and
    it can generalise worse than a plain average. Here each candidate rule -- greedy selection, or the equal-weight
    mean of the k runs best on their own (k = 1..n) -- is fitted on a random half of PublicTest and scored on the
    other half, both ways, `repeats` times with a fixed seed. The rule with the best mean held-out accuracy (ties:
    the simpler, i.e. top-k with the smaller k) is then fitted on all of PublicTest. No other split is touched.
    Selection.cv holds each rule's held-out accuracy ("greedy", "top1", "top2", ...).
    """
    names = sorted(public)
    if not names:
        raise ValueError("no runs to choose from")
    if len(labels) < 4:  # each half must hold images to fit on and to score
        raise ValueError(f"cross-validated selection needs at least 4 PublicTest images, got {len(labels)}")
    probs = {n: np.exp(log_softmax(public[n])) for n in names}
    # insertion order top1..topn, then greedy: max() below keeps the first best, i.e. the simplest rule on ties
    scores: dict[str, list[float]] = {f"top{k}": [] for k in range(1, len(names) + 1)} | {"greedy": []}
    for fit, held in half_splits(len(labels), repeats, seed):
        order = ranked_runs(probs, labels, fit)
        for k, acc in enumerate(_top_k_accuracies(probs, order, labels, held), 1):
            scores[f"top{k}"].append(acc)
        greedy = greedy_select({n: public[n][fit] for n in names}, labels[fit])
        mixed = sum(w * probs[n][held] for n, w in greedy.weights.items())
        scores["greedy"].append(_accuracy(mixed, labels[held]))
    cv = {rule: float(np.mean(v)) for rule, v in scores.items()}
    rule = max(cv, key=cv.get)
    if rule == "greedy":
        return replace(greedy_select(public, labels), cv=cv, rule=rule)
    every = np.arange(len(labels))
    order = ranked_runs(probs, labels, every)[: int(rule.removeprefix("top"))]
    history = list(zip(order, _top_k_accuracies(probs, order, labels, every), strict=True))
    return Selection(order, dict.fromkeys(order, 1), history[-1][1], history, cv, rule)


def split_rows(splits) -> dict[str, int]:
    """Rows per official split of the data at hand (the shared file: SPLIT_ROWS)."""
    return {"Training": len(splits.train), "PublicTest": len(splits.val), "PrivateTest": len(splits.test)}


def read_runs(paths: list[str | Path], data_sha256: str, splits) -> list[RunPredictions]:
    """Every run in `paths`, refused if made on another data file or for other split sizes than `splits`."""
    rows = split_rows(splits)
    return [read_run(p, data_sha256, rows) for p in paths]


def load_runs(paths: list[str | Path], data: str | None = None) -> tuple[list[RunPredictions], Splits, str]:
    """(runs, the official splits, the data file's sha256): every run in `paths` read against the FER2013 file
    found as `locate(data)` finds it, refused if made on another file. The one way commands that score committed
    runs (the ensemble, the probes in benchmarks/) get both the runs and the labels to score them with."""
    from ferkit.data import load_fer2013, locate, make_splits
    from ferkit.data.source import data_identity

    source = locate(data)
    sha = data_identity(source)["sha256"]
    splits = make_splits(load_fer2013(source), "official")
    return read_runs(paths, sha, splits), splits, sha


def ensemble_from_runs(
    paths: list[str | Path], data: str | None = None, tta: bool = False, select: str = "greedy"
) -> dict:
    """Choose members and weights on PublicTest (select: "greedy" = greedy_select, "cv" = cv_select), then report
    PublicTest, PrivateTest and the PrivateTest images not in Training ("unseen"). PrivateTest labels are read only
    after the choice is made."""
    if select not in SELECTORS:
        raise ValueError(f"unknown ensemble selection {select!r}; choose from {', '.join(SELECTORS)}")
    from ferkit.data.quality import unseen_mask
    from ferkit.metrics import subset_summary

    runs, splits, sha = load_runs(paths, data)
    names = [r.name for r in runs]
    if len(set(names)) != len(names):
        raise PredictionFileError(f"run names repeat: {', '.join(names)}")
    by_name = {r.name: r for r in runs}
    choice = SELECTORS[select]({r.name: r.split("PublicTest", tta) for r in runs}, splits.val.labels)
    weights = [float(choice.weights[n]) for n in choice.weights]

    def figures(usage: str, part) -> dict:
        logits = ensemble_logits([by_name[n].split(usage, tta) for n in choice.weights], weights)
        return subset_summary(logits, part.labels, np.ones(len(part), bool)) | {
            "unseen": subset_summary(logits, part.labels, unseen_mask(part.images, splits.train.images))
        }

    singles = {r.name: float((r.split("PublicTest", tta).argmax(1) == splits.val.labels).mean()) for r in runs}
    return {
        "members": choice.weights,
        "history": choice.history,
        "select": select,
        "rule": choice.rule,
        "cv": choice.cv,
        "tta": tta,
        "single_public": singles,
        "PublicTest": figures("PublicTest", splits.val),
        "PrivateTest": figures("PrivateTest", splits.test),
        "data_sha256": sha,
    }


SELECTORS = {"greedy": greedy_select, "cv": cv_select}


def record_run(out: str | Path, source: Path, logits_of, tta_logits_of, info: dict) -> Path:
    """The half every prediction-file writer shares: the official splits of `source`, single-crop logits of every
    split in file order (`logits_of(usage, images)`: "Training" etc. and (N, 48, 48) uint8 -> (N, 7); the usage
    lets k-fold writers route each Training row to its own model), TTA logits of the two test splits
    (`tta_logits_of`, same form), and run.json = `info` + the machine, PublicTest accuracy and the data's identity."""
    from ferkit.data import load_fer2013, make_splits
    from ferkit.data.source import data_identity
    from ferkit.hardware import machine_description

    splits = make_splits(load_fer2013(source), "official")
    parts = {"Training": splits.train, "PublicTest": splits.val, "PrivateTest": splits.test}
    logits = {k: logits_of(k, p.images) for k, p in parts.items()}
    for k in ("PublicTest", "PrivateTest"):
        logits[f"{k}_tta"] = tta_logits_of(k, parts[k].images)
    identity = data_identity(source)
    info = {
        **info,
        "machine": info.get("machine") or machine_description(),
        "public_accuracy": float((logits["PublicTest"].argmax(1) == splits.val.labels).mean()),
        "data": identity["file"],
        "data_sha256": identity["sha256"],
    }
    return write_run(out, logits, info, split_rows(splits))


def record_onnx_predictions(model: str | Path, out: str | Path, data: str | None = None) -> Path:
    """A ferkit .onnx file (e.g. a bundled model whose checkpoint is gone) -> its prediction files, through ONNX
    Runtime: single-crop logits of every official split in file order, plus flip-TTA logits of the test splits."""
    from ferkit.data import locate
    from ferkit.runtime import Recognizer

    rec = Recognizer.from_file(model)
    recipe = json.loads(rec.metadata.get("recipe", "{}"))

    def flip_tta(images: np.ndarray) -> np.ndarray:  # the mean of the two views' logits, as predict_logits does
        return (rec.logits(images) + rec.logits(images[:, :, ::-1].copy())) / 2

    info = {
        "model": rec.metadata.get("model_name"),
        "model_args": recipe.get("model_args", {}),
        "parameters": int(rec.metadata["parameters"]) if "parameters" in rec.metadata else None,
        "seed": recipe.get("seed"),
        "epochs": sum(p.get("epochs", 0) for p in recipe.get("phases", [])),
        "source_model": Path(model).name,
        "training_logits": "in-sample: the shipped model on the Training images it was fitted on",
        "tta": "flip",
        "recipe": recipe,
    }
    return record_run(out, locate(data), lambda _, images: rec.logits(images), lambda _, im: flip_tta(im), info)
