"""ferkit.report: what the commands print, rendered from plain library results (no command is run)."""

import csv
import io
from pathlib import Path

from rich.console import Console

from ferkit import report
from ferkit.data import SkippedRow, dataset_info, load_fer2013
from ferkit.labels import CLASS_NAMES

FACE = {
    "source": "a/p.jpg",
    "frame": None,
    "face": 0,
    "box": [1, 2, 30, 40],
    "score": 0.9,
    "expression": "happy",
    "probabilities": dict(zip(CLASS_NAMES, (0.05, 0.0, 0.05, 0.6, 0.1, 0.0, 0.2), strict=True)),
}
NO_FACE = {"source": "b/v.mp4", "frame": 3, "face": None, "expression": None}


def text_of(*items) -> str:
    console = Console(width=report.WIDTH, record=True, file=io.StringIO())
    for item in items:
        console.print(item)
    return console.export_text()


def test_records_csv_has_a_column_per_label_and_rows_without_faces():
    out = io.StringIO()
    report.records_csv([FACE, NO_FACE], CLASS_NAMES, out)
    rows = list(csv.DictReader(out.getvalue().splitlines()))
    assert [r["expression"] for r in rows] == ["happy", ""]
    assert float(rows[0]["happy"]) == 0.6 and rows[1]["happy"] == "" and rows[1]["frame"] == "3"


def test_records_table_names_the_expression_and_runner_up():
    text = text_of(report.records_table([FACE, NO_FACE]))
    assert "happy" in text and "0.60" in text and "neutral 0.20" in text and "no face" in text


def test_score_report_lists_frames_and_the_round_score():
    frames = [
        {"frame": i, "t": i / 10, "raw": 50.0, "smoothed": 40.0 + i, "best": 40.0 + i, "expression": "happy"}
        for i in range(3)
    ]
    items = report.score_report({"clip.mp4": frames}, "happy")
    assert items[-1] == "clip.mp4: score 42.0 / 100 for happy"
    assert "Best Actor: happy" in text_of(items[0])


def test_skipped_summary_counts_every_reason():
    skipped = [SkippedRow(f"f.csv line {i}", "bad pixels (2303 values)") for i in range(7)]
    skipped.append(SkippedRow("f.csv line 9", "unknown label 9"))
    text = report.skipped_summary(skipped)
    assert "skipped 8" in text and "7 x bad pixels" in text and "1 x unknown label 9" in text and " ..." in text


def test_data_info_renders_counts_duplicates_and_the_missing_ferplus(fer_csv, tmp_path):
    info = dataset_info(load_fer2013(fer_csv), ferplus=str(tmp_path / "none.csv"))
    assert info.ferplus is None and "not found" in info.ferplus_note
    d = info.to_dict()
    assert d["rows"] == 35 and sum(d["counts"]["Training"]) == info.sizes["Training"] and "not found" in d["ferplus"]
    text = text_of(*report.data_info(info))
    assert "Training" in text and "exact duplicates" in text and "FER+ votes: not found" in text


def test_train_summary_and_models_table():
    summary = {
        "precision": "32-true",
        "parameters": {"trainable": 1234},
        "phases": [{"phase": "main", "epochs_run": 2, "seconds": 3.0, "val": {"accuracy": 0.5, "macro_f1": 0.4}}],
    }
    items = report.train_summary(summary, Path("runs/x"))
    assert "1,234 parameters" in text_of(items[0]) and items[1] == "model: runs/x/model.pt"
    rows = [{"model": "m", "parameters": 10, "input_size": [1, 40, 40], "macs": 2_000_000, "flops": 4_000_000}]
    assert "1x40x40" in text_of(report.models_table(rows))


def test_ensemble_text_reports_both_tests_with_unseen():
    split = {"accuracy": 0.7, "n": 3589, "unseen": {"accuracy": 0.68, "n": 3300}}
    r = {
        "single_public": {"a": 0.69, "b": 0.68},
        "members": {"a": 1, "b": 2},
        "PublicTest": split,
        "PrivateTest": split,
    }
    text = report.ensemble_text(r, tta=True)
    assert "(TTA logits): a x1, b x2" in text and "PrivateTest: accuracy 0.7000 (n 3589); unseen 0.6800" in text
