"""`ferkit predict` and `ferkit export` through the real CLI."""

import csv
import io
import json
from pathlib import Path

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


def _checkpoint(tmp_path, fer_csv, model):
    import torch

    from ferkit.training.config import TrainConfig, to_dict

    ckpt = tmp_path / "model.pt"
    state = {"model": "seed_vgg", "model_args": {}, "config": to_dict(TrainConfig(data=str(fer_csv)))}
    torch.save(state | {"state_dict": model.state_dict()}, ckpt)
    return ckpt


def test_export_cli_writes_metadata_and_checks_parity(tmp_path, fer_csv, tiny_model, capsys):
    from ferkit.runtime import Recognizer

    ckpt = _checkpoint(tmp_path, fer_csv, tiny_model)
    out = tmp_path / "exported.onnx"
    assert main(["export", str(ckpt), "--out", str(out), "--temperature", "1.3"]) == 0
    assert "max_abs_prob_diff" in capsys.readouterr().out
    rec = Recognizer.from_file(out)
    assert rec.temperature == 1.3 and rec.metadata["model_name"] == "seed_vgg"
    assert json.loads(rec.metadata["training_data"])["selection"] == "PublicTest"


def test_export_fits_temperature_on_public_test_only(trained, tmp_path, capsys):
    """`--temperature fit` stores the NLL minimiser on PublicTest logits; PrivateTest labels play no part."""
    import pytest
    import torch

    from ferkit.data import load_fer2013, make_splits
    from ferkit.metrics import softmax
    from ferkit.runtime import Recognizer

    ckpt, model, _ = trained
    data = torch.load(ckpt, weights_only=False)["config"]["data"]
    out = tmp_path / "fit.onnx"
    assert main(["export", str(ckpt), "--out", str(out), "--temperature", "fit"]) == 0
    assert "temperature fitted on PublicTest" in capsys.readouterr().out
    t = Recognizer.from_file(out).temperature
    val = make_splits(load_fer2013(data), "official", seed=42).val
    with torch.no_grad():
        logits = model(torch.from_numpy(val.images[:, None].astype(np.float32) / 255)).numpy()

    def nll(temperature: float) -> float:
        p = softmax(logits, temperature)
        return float(-np.log(p[np.arange(len(val.labels)), val.labels]).mean())

    assert 0.05 < t < 20 and t != 1.0
    for other in (t / 1.1, t * 1.1, 1.0):  # the minimum of the PublicTest NLL
        assert nll(t) <= nll(other) + 1e-6
    # relabel every PrivateTest face: the fitted temperature must not move
    lines = Path(data).read_text().splitlines()
    shifted = [
        f"{(int(r.split(',', 1)[0]) + 1) % 7},{r.split(',', 1)[1]}" if r.endswith("PrivateTest") else r
        for r in lines[1:]
    ]
    poisoned = tmp_path / "poisoned.csv"
    poisoned.write_text("\n".join([lines[0], *shifted]) + "\n")
    other = tmp_path / "p.onnx"
    assert main(["export", str(ckpt), "--out", str(other), "--temperature", "fit", "--data", str(poisoned)]) == 0
    assert Recognizer.from_file(other).temperature == pytest.approx(t)
    for bad in ("warm", "0", "-1"):
        with pytest.raises(SystemExit):
            main(["export", str(ckpt), "--temperature", bad])
        assert "temperature" in capsys.readouterr().err
