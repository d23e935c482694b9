"""`ferkit export` through the real CLI: metadata, parity with torch, the temperature fitted on PublicTest only."""

import json
from pathlib import Path

import numpy as np

from ferkit.cli import main


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
