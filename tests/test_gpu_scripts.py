"""scripts/gpu_data.py and scripts/gpu_train.py: the tools that carry FER2013 to a lent GPU and train there."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from ferkit.data import read_csv

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pack_unpack_is_lossless_and_writes_the_kaggle_layout(faces, tmp_path):
    gpu_data = _script("gpu_data")
    images, labels, usage = faces
    rng = np.random.default_rng(0)
    images = np.concatenate([images] * 40)  # 1400 faces: more than one mosaic per part
    images = rng.integers(0, 256, images.shape, dtype=np.uint8)  # noise: the hardest case for a codec
    labels, codes = np.tile(labels, 40), np.tile([gpu_data.USAGES.index(u) for u in usage], 40).astype(np.uint8)
    parts = gpu_data.pack(images, labels, codes, tmp_path / "gpu", parts=2)
    assert [p.name for p in parts] == ["part1", "part2"]
    back = gpu_data.unpack(parts[::-1])  # any order
    assert np.array_equal(back[0], images) and np.array_equal(back[1], labels) and np.array_equal(back[2], codes)
    gpu_data.write_csv(*back, tmp_path / "fer2013.csv")
    ds = read_csv(tmp_path / "fer2013.csv")
    assert np.array_equal(ds.images, images) and np.array_equal(ds.labels, labels)
    assert ds.usage.tolist() == [gpu_data.USAGES[c] for c in codes]
    with pytest.raises(ValueError, match="pass every part once"):
        gpu_data.unpack(parts[:1])
    mosaic = parts[0] / "faces-000.webp"
    mosaic.write_bytes(gpu_data.cv2.imencode(".webp", np.zeros((960, 2400), np.uint8))[1].tobytes())
    with pytest.raises(ValueError, match="do not match its manifest"):
        gpu_data.unpack(parts)


def _log(path: Path, seconds: list[float]) -> None:
    path.write_text(
        "".join(f"[main] epoch {i:3d}  train_loss 1.0  val_acc 0.5  {s:.0f}s\n" for i, s in enumerate(seconds))
    )


def test_fit_epochs_shortens_the_schedule_only_when_it_overruns(tmp_path, monkeypatch):
    gpu_train = _script("gpu_train")
    log = tmp_path / "s42.log"
    procs = {42: (None, tmp_path, log)}
    now = 1000.0
    monkeypatch.setattr(gpu_train.time, "time", lambda: now)
    args = gpu_train.argparse.Namespace(epochs=300, budget=400)
    _log(log, [12])
    assert gpu_train._fit_epochs(args, now - 40, now - 40, procs) is None  # one epoch: too early to judge
    _log(log, [12, 1])
    assert gpu_train._fit_epochs(args, now - 40, now - 30, procs) is None  # 298 x 1 s fits the 330 s left
    _log(log, [12, 2])  # 298 x 2 s does not: (330 s - 16 s start-up) / 2 s, less one spare epoch
    assert gpu_train._fit_epochs(args, now - 40, now - 30, procs) == 156


def test_gpu_train_runs_a_seed_through_the_real_cli_and_returns_chunks(fer_csv, tmp_path, monkeypatch):
    gpu_train = _script("gpu_train")
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[1] / "src"))
    monkeypatch.setattr(gpu_train, "CHUNK", 2**20)  # the 2 MB test model comes back in several chunks
    out = tmp_path / "out"
    argv = ["--csv", str(fer_csv), "--config", "mobile", "--seeds", "7", "--epochs", "2"]
    argv += ["--budget", "300", "--out", str(out), "--runs", str(tmp_path / "runs")]
    argv += ["--", "--limit", "24", "--batch-size", "8", "--threads", "1", "--set", "warmup_epochs=0"]
    assert gpu_train.main(argv) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["epochs"] == 2 and not report["restarted"]
    assert len(report["seeds"]["7"]["epoch_seconds"]) == 2
    chunks = sorted(out.glob("s7.model.pt.*"))
    assert len(chunks) >= 2 and all(c.stat().st_size <= 2**20 for c in chunks)
    joined = b"".join(c.read_bytes() for c in chunks)
    assert joined == (tmp_path / "runs" / "s7-e2" / "model.pt").read_bytes()


def test_half_weights_halve_the_file_and_load_back_into_the_float32_model(tmp_path):
    import torch

    from ferkit.models import create_model
    from ferkit.models.checkpoint import load_model, save_model

    gpu_train = _script("gpu_train")
    model = create_model("fast_fer_u").eval()
    full = tmp_path / "model.pt"
    save_model(model, {"model": "fast_fer_u"}, {}, full)
    half = tmp_path / "half.pt"
    half.write_bytes(gpu_train._half_weights(full))
    assert half.stat().st_size < 0.6 * full.stat().st_size
    back, ckpt = load_model(half)
    assert ckpt["summary"]["weights_returned_as"].startswith("float16")
    assert all(p.dtype == torch.float32 for p in back.parameters())
    x = torch.rand(4, 1, *model.pretrained_cfg["input_size"][-2:])
    with torch.no_grad():
        assert torch.allclose(back(x), model(x), atol=1e-2)


def test_retarget_readdresses_prediction_files_between_the_packed_file_and_its_copy(faces, tmp_path):
    from ferkit.data.source import data_identity

    gpu_data = _script("gpu_data")
    images, labels, usage = faces
    codes = np.array([gpu_data.USAGES.index(u) for u in usage], np.uint8)
    source = {"file": "fer2013.csv.gz", "sha256": "a" * 64}
    parts = gpu_data.pack(images, labels, codes, tmp_path / "gpu", parts=2, source=source)
    csv = tmp_path / "copy" / "fer2013.csv"
    gpu_data.write_csv(*gpu_data.unpack(parts), csv)
    copy_sha = data_identity(csv)["sha256"]
    run = tmp_path / "runs" / "teacher"
    run.mkdir(parents=True)
    (run / "predictions.npz").write_bytes(b"logits")
    (run / "run.json").write_text(json.dumps({"name": "teacher", "data": "fer2013.csv.gz", "data_sha256": "a" * 64}))
    there = gpu_data.retarget([run], parts, csv, tmp_path / "there")[0]
    info = json.loads((there / "run.json").read_text())
    assert info["data_sha256"] == copy_sha and info["data"] == "fer2013.csv" and "retarget" in info["data_sha256_via"]
    assert (there / "predictions.npz").read_bytes() == b"logits"
    back = gpu_data.retarget([there], parts, csv, tmp_path / "back")[0]  # made there: back to the packed file
    assert json.loads((back / "run.json").read_text())["data_sha256"] == "a" * 64
    other = tmp_path / "other" / "teacher"
    other.mkdir(parents=True)
    (other / "run.json").write_text(json.dumps({"data_sha256": "b" * 64}))
    with pytest.raises(ValueError, match="neither file's"):
        gpu_data.retarget([other], parts, csv, tmp_path / "x")
    swapped = labels.copy()
    swapped[0] = (swapped[0] + 1) % 7
    gpu_data.write_csv(images, swapped, codes, csv)  # a label changed: no longer the packed file's copy
    with pytest.raises(ValueError, match="not its unpacked copy"):
        gpu_data.retarget([run], parts, csv, tmp_path / "y")
