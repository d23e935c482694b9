"""Shared fixtures: tiny synthetic FER2013 data in every layout, written by the tests themselves."""

from __future__ import annotations

import contextlib
import gzip
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

USAGES = ("Training", "PublicTest", "PrivateTest")
REAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "fer2013" / "fer2013.csv.gz"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own cache folder and no stray FERKIT_DATA."""
    monkeypatch.setenv("FERKIT_CACHE", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.delenv("FERKIT_DATA", raising=False)
    monkeypatch.setenv("FERKIT_PROGRESS", "0")


def make_faces(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n, 48, 48) uint8 images whose mean brightness encodes the class; labels; usages."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 7
    base = (labels * 30 + 20).astype(np.int16)[:, None, None]
    images = np.clip(base + rng.integers(-15, 16, size=(n, 48, 48)), 0, 255).astype(np.uint8)
    usage = np.array([USAGES[0] if i % 5 < 3 else USAGES[1 + i % 2] for i in range(n)])
    return images, labels, usage


def csv_text(images, labels=None, usage=None, columns=("emotion", "pixels", "Usage"), sep_header=",") -> str:
    lines = [sep_header.join(columns)]
    for i, img in enumerate(images):
        fields = {
            "emotion": str(labels[i]) if labels is not None else "",
            "pixels": " ".join(map(str, img.ravel().tolist())),
            "Usage": usage[i] if usage is not None else "",
        }
        lines.append(",".join(fields[c.strip()] for c in columns))
    return "\n".join(lines) + "\n"


def write_csv(path: Path, text: str, gz: bool = False) -> Path:
    data = text.encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


@pytest.fixture
def faces():
    return make_faces(35)


@pytest.fixture
def fer_csv(tmp_path, faces) -> Path:
    images, labels, usage = faces
    return write_csv(tmp_path / "fer2013.csv", csv_text(images, labels, usage))


def write_folder(root: Path, images, labels, usage, prefixed: bool = True, ext: str = ".png", size: int = 48) -> Path:
    import cv2

    from ferkit.labels import CLASS_NAMES

    for i, (img, lab, use) in enumerate(zip(images, labels, usage, strict=True)):
        part = "train" if use == "Training" else "test"
        d = root / part / CLASS_NAMES[lab]
        d.mkdir(parents=True, exist_ok=True)
        name = f"{use}_{i:05d}{ext}" if prefixed else f"im{i:05d}{ext}"
        out = img if size == 48 else cv2.resize(img, (size, size), interpolation=cv2.INTER_NEAREST)
        cv2.imwrite(str(d / name), out)
    return root


def real_data_or_skip() -> Path:
    path = Path(os.environ.get("FERKIT_TEST_DATA", REAL_DATA))
    if not path.is_file():
        pytest.skip(f"FER2013 not found at {path} (get it from Kaggle; see README)")
    return path


@pytest.fixture(scope="session")
def tiny_model():
    """An untrained seed_vgg (fixed seed): the torch side of the parity tests."""
    import torch

    from ferkit.models import create_model

    torch.manual_seed(0)
    return create_model("seed_vgg").eval()


@pytest.fixture(scope="session")
def tiny_onnx(tiny_model, tmp_path_factory) -> Path:
    """tiny_model exported to ONNX with its contract (temperature 1.5, so calibration is exercised)."""
    import json

    from ferkit.export.onnx import contract, export_onnx

    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    faces = make_faces(16, seed=1)[0]
    export_onnx(tiny_model, path, {"ferkit_contract": json.dumps(contract(tiny_model, temperature=1.5))}, faces)
    return path


@pytest.fixture(scope="session")
def photo() -> str:
    """A real photo with one face (matplotlib's sample data; nothing is downloaded)."""
    cbook = pytest.importorskip("matplotlib.cbook")
    return cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)


@pytest.fixture
def inputs(tmp_path, photo) -> Path:
    """A folder with a photo, a 48 px face crop and a 10-frame video."""
    import shutil

    import cv2

    d = tmp_path / "in"
    d.mkdir()
    shutil.copy(photo, d / "hopper.jpg")
    cv2.imwrite(str(d / "crop.png"), make_faces(1)[0][0])
    frame = cv2.resize(cv2.imread(photo), (256, 320))
    writer = cv2.VideoWriter(str(d / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (256, 320))
    for _ in range(10):
        writer.write(frame)
    writer.release()
    return d


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """seed_vgg_tiny fitted for a few epochs on faces whose brightness encodes the class, and its data."""
    import torch

    from ferkit.models import create_model
    from ferkit.training.config import TrainConfig, to_dict

    root = tmp_path_factory.mktemp("trained")
    images, labels, usage = make_faces(140, seed=7)
    csv = write_csv(root / "fer2013.csv", csv_text(images, labels, usage))
    torch.manual_seed(0)
    model = create_model("seed_vgg_tiny", dropout=0.0)
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    x, y = torch.from_numpy(images[:, None].astype(np.float32) / 255), torch.from_numpy(labels)
    for _ in range(20):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    # Keras's BN momentum (0.99) needs many more steps than this: re-estimate the statistics in one pass.
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    with torch.no_grad():
        model(x)
    model.eval()
    assert (model(x).argmax(1) == y).float().mean() > 0.9
    ckpt = root / "model.pt"
    torch.save(
        {
            "model": "seed_vgg_tiny",
            "model_args": {"dropout": 0.0},
            "config": to_dict(TrainConfig(data=str(csv))),
            "state_dict": model.state_dict(),
        },
        ckpt,
    )
    return ckpt, model, images


# Helpers shared by several test files (imported as `from conftest import ...`).

BLOCK_TORCH = textwrap.dedent(
    """
    import sys
    class _Block:
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch.") or name in ("lightning", "pytorch_lightning"):
                raise ModuleNotFoundError(f"torch is blocked in this test ({name})", name=name)
    sys.meta_path.insert(0, _Block())
    """
)


def run_blocked(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK_TORCH + textwrap.dedent(code)], capture_output=True, text=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def served(*args: str, scheme: str = "http", verify: bool | object = True) -> Iterator[tuple[str, subprocess.Popen]]:
    """A real `ferkit serve` on a free loopback port (uvicorn, not the test client): yields its base URL and the
    process; on exit it is stopped and its stdout/stderr are left in `proc.out` / `proc.err`."""
    import httpx

    port = free_port()
    cmd = [sys.executable, "-m", "ferkit", "serve", "--port", str(port), *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"{scheme}://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                if httpx.get(f"{url}/health", verify=verify, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise AssertionError(f"ferkit serve did not come up on {url}")
        yield url, proc
    finally:
        proc.terminate()
        proc.out, proc.err = proc.communicate(timeout=15)
