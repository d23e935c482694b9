"""Classification metrics in NumPy (no torch: the runtime and benchmarks use them too)."""

from __future__ import annotations

import numpy as np

from ferkit.labels import CLASS_NAMES


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, k: int = len(CLASS_NAMES)) -> np.ndarray:
    """(k, k) int64: rows are true classes, columns predicted."""
    return np.bincount(labels * k + preds, minlength=k * k).reshape(k, k)


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    conf, pred = probs.max(1), probs.argmax(1)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        m = which == b
        if m.any():
            ece += m.mean() * abs((pred[m] == labels[m]).mean() - conf[m].mean())
    return float(ece)


def classification_report(logits: np.ndarray, labels: np.ndarray, names: tuple[str, ...] | None = None) -> dict:
    """Accuracy, top-2, per-class precision/recall/F1, macro-F1, confusion (counts, row-normalised), ECE, NLL.

    names: the class of each logit column (default FER2013's seven; FER+ models have eight)."""
    names = tuple(names or CLASS_NAMES)
    if logits.shape[1] != len(names):
        raise ValueError(f"logits have {logits.shape[1]} columns for {len(names)} class names")
    probs = softmax(logits.astype(np.float64))
    preds = probs.argmax(1)
    cm = confusion_matrix(labels, preds, len(names))
    tp = np.diag(cm).astype(float)
    precision = np.divide(tp, cm.sum(0), out=np.zeros_like(tp), where=cm.sum(0) > 0)
    recall = np.divide(tp, cm.sum(1), out=np.zeros_like(tp), where=cm.sum(1) > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(tp), where=precision + recall > 0)
    top2 = (np.argsort(-probs, axis=1)[:, :2] == labels[:, None]).any(1)
    nll = -np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, None)).mean()
    return {
        "n": len(labels),
        "accuracy": float((preds == labels).mean()),
        "top2_accuracy": float(top2.mean()),
        "macro_f1": float(f1.mean()),
        "nll": float(nll),
        "ece": expected_calibration_error(probs, labels),
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(cm[i].sum()),
            }
            for i, name in enumerate(names)
        },
        "confusion": cm.tolist(),
        "confusion_normalized": np.round(cm / np.maximum(cm.sum(1, keepdims=True), 1), 4).tolist(),
    }


def report_markdown(report: dict, title: str) -> str:
    lines = [
        f"# {title}",
        "",
        f"n = {report['n']}; accuracy **{report['accuracy']:.4f}**; top-2 {report['top2_accuracy']:.4f}; "
        f"macro-F1 {report['macro_f1']:.4f}; NLL {report['nll']:.4f}; ECE {report['ece']:.4f}",
        "",
        *(_unseen_line(report["unseen"]) if "unseen" in report else []),
        "| class | precision | recall | F1 | support |",
        "|---|---|---|---|---|",
    ]
    for name, r in report["per_class"].items():
        lines.append(f"| {name} | {r['precision']:.3f} | {r['recall']:.3f} | {r['f1']:.3f} | {r['support']} |")
    names = list(report["per_class"])
    lines += ["", "Confusion matrix (rows true, columns predicted):", "", "| | " + " | ".join(names) + " |"]
    lines.append("|---" * (len(names) + 1) + "|")
    for name, row in zip(names, report["confusion"], strict=True):
        lines.append(f"| {name} | " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def _unseen_line(u: dict) -> list[str]:
    return [
        f"unseen (the {u['n']} images with no copy in Training): accuracy **{u['accuracy']:.4f}**; "
        f"macro-F1 {u['macro_f1']:.4f}",
        "",
    ]


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature T minimising the NLL of softmax(logits / T): calibrates without changing any argmax."""
    logits = logits.astype(np.float64)

    def nll(t: float) -> float:
        p = softmax(logits, t)
        return float(-np.log(np.clip(p[np.arange(len(labels)), labels], 1e-12, None)).mean())

    # golden-section search on log T in [0.05, 20]; the NLL is unimodal in T
    lo, hi = np.log(0.05), np.log(20.0)
    g = (np.sqrt(5) - 1) / 2
    a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    fa, fb = nll(np.exp(a)), nll(np.exp(b))
    for _ in range(60):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - g * (hi - lo)
            fa = nll(np.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + g * (hi - lo)
            fb = nll(np.exp(b))
    return float(np.exp((lo + hi) / 2))


def subset_summary(
    logits: np.ndarray, labels: np.ndarray, mask: np.ndarray, names: tuple[str, ...] | None = None
) -> dict:
    """n, accuracy and macro-F1 of the rows in mask (the "unseen" test images: not in Training)."""
    if not mask.any():
        return {"n": 0, "accuracy": float("nan"), "macro_f1": float("nan")}
    r = classification_report(logits[mask], labels[mask], names)
    return {"n": r["n"], "accuracy": r["accuracy"], "macro_f1": r["macro_f1"]}


def split_evaluation(
    logits: np.ndarray, flip_logits: np.ndarray, labels: np.ndarray, unseen: np.ndarray, temperature: float
) -> dict:
    """The figures a model file and its card carry for one test split: official, flip-TTA, calibrated, and the
    same on the images not in Training ("unseen")."""
    r = classification_report(logits, labels)
    unseen_r = subset_summary(logits, labels, unseen)
    unseen_r["accuracy_flip_tta"] = subset_summary(flip_logits, labels, unseen)["accuracy"]
    return {
        "n": r["n"],
        "accuracy": r["accuracy"],
        "accuracy_flip_tta": float((flip_logits.argmax(1) == labels).mean()),
        "macro_f1": r["macro_f1"],
        "top2_accuracy": r["top2_accuracy"],
        "ece": r["ece"],
        "ece_calibrated": expected_calibration_error(softmax(logits.astype(np.float64), temperature), labels),
        "recall": {c: r["per_class"][c]["recall"] for c in CLASS_NAMES},
        "unseen": unseen_r,
    }
