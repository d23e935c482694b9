"""`ferkit predict` through the real CLI: JSON, CSV, annotated images and charts, bad files and no faces."""

import csv
import io
import json

import cv2
import numpy as np

from ferkit.cli import main


def test_predict_folder_with_video_as_json(inputs, tiny_onnx, capsys):
    assert main(["predict", str(inputs), "--model", str(tiny_onnx), "--every", "5", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    by_source = {}
    for r in records:
        by_source.setdefault(r["source"].rsplit("/", 1)[-1], []).append(r)
    assert [r["frame"] for r in by_source["clip.avi"]] == [0, 5]
    assert by_source["hopper.jpg"][0]["face"] == 0 and len(by_source["hopper.jpg"][0]["probabilities"]) == 7
    assert by_source["crop.png"][0]["box"] == [0, 0, 48, 48]


def test_predict_glob_csv_annotate_chart(inputs, tiny_onnx, tmp_path, capsys):
    args = [
        "predict",
        str(inputs / "*.jpg"),
        "--model",
        str(tiny_onnx),
        "--csv",
        "--annotate",
        str(tmp_path / "ann"),
        "--chart",
        str(tmp_path / "charts"),
    ]
    assert main(args) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0][:3] == ["source", "frame", "face"] and rows[0][-7:][0] == "angry" and len(rows) == 2
    assert abs(sum(float(v) for v in rows[1][-7:]) - 1) < 1e-3
    annotated = cv2.imread(str(tmp_path / "ann" / "hopper.jpg"))
    assert annotated is not None and annotated.shape[:2] == cv2.imread(str(inputs / "hopper.jpg")).shape[:2]
    assert (tmp_path / "charts" / "hopper_face0.png").read_bytes()[:4] == b"\x89PNG"


def test_predict_reports_bad_files_and_no_faces(tmp_path, tiny_onnx, capsys):
    (tmp_path / "bad.jpg").write_bytes(b"garbage")
    cv2.imwrite(str(tmp_path / "blank.png"), np.full((240, 320), 128, np.uint8))
    assert main(["predict", str(tmp_path / "blank.png"), str(tmp_path / "bad.jpg"), "--model", str(tiny_onnx)]) == 1
    captured = capsys.readouterr()
    assert "bad.jpg: not an image" in captured.err and "no face" in captured.out
    assert main(["predict", str(tmp_path / "bad.jpg"), "--model", str(tiny_onnx)]) == 1
    captured = capsys.readouterr()
    assert "bad.jpg: not an image" in captured.err and captured.out == ""  # no empty table when nothing succeeded
    assert main(["predict", str(tmp_path / "nothing*.jpg"), "--model", str(tiny_onnx)]) == 2
    assert "matches no file" in capsys.readouterr().err
