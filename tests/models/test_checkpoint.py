"""Opening a model file never runs code: pickles naming callables are refused (issue 21, finding 1)."""

from __future__ import annotations

import pickle

import pytest

from ferkit.cli import main


class Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):  # unpickling this would create the marker file
        import os

        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def evil_pt(tmp_path):
    import torch

    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"model": "seed_vgg_tiny", "state_dict": {}, "payload": Evil(marker)}, path)
    return path, marker


@pytest.mark.parametrize(
    "argv",
    [
        lambda p: ["evaluate", str(p)],
        lambda p: ["export", str(p), "--out", str(p.with_suffix(".onnx"))],
        lambda p: ["bundle", str(p), "--package-dir", str(p.parent), "--card", str(p.with_suffix(".md"))],
        lambda p: ["predictions", str(p), "--out", str(p.parent / "run")],
    ],
    ids=["evaluate", "export", "bundle", "predictions"],
)
def test_malicious_checkpoint_is_refused_by_every_command(evil_pt, argv, capsys):
    path, marker = evil_pt
    assert main(argv(path)) == 2
    assert "refused" in capsys.readouterr().err
    assert not marker.exists()


def test_init_and_distill_teacher_refuse_it_too(evil_pt, fer_csv, tmp_path, capsys):
    path, marker = evil_pt
    tiny = ["--data", str(fer_csv), "--limit", "16", "--epochs", "1", "--threads", "1"]
    run = ["--run-dir", str(tmp_path / "r")]
    assert main(["train", "--config", "seed", *tiny, *run, "--set", f"init={path}"]) == 2
    assert main(["distill", "--teacher", str(path), "--config", "mobile", *tiny, *run]) == 2
    assert capsys.readouterr().err.count("refused") == 2 and not marker.exists()


def test_load_checkpoint_errors(tmp_path):
    from ferkit.models.checkpoint import CheckpointError, load_checkpoint

    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a zip or a pickle")
    with pytest.raises(CheckpointError, match="not a readable checkpoint|refused"):
        load_checkpoint(tmp_path / "junk.pt")
    import torch

    torch.save({"a": 1, "t": torch.ones(2), "cfg": {"input_size": (1, 44, 44)}}, tmp_path / "ok.pt")
    assert load_checkpoint(tmp_path / "ok.pt")["cfg"] == {"input_size": (1, 44, 44)}  # plain data is fine
    (tmp_path / "p.pt").write_bytes(pickle.dumps(Evil(tmp_path / "pwned")))
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(tmp_path / "p.pt")
    assert not (tmp_path / "pwned").exists()


def test_full_disk_while_writing_the_resume_point_keeps_the_previous_one(fer_csv, tmp_path, monkeypatch, capsys):
    """ENOSPC injected into the second epoch's resume write: the run stops with a clear error, the epoch-1 resume
    point stays loadable, no temporary file is left, and rerunning the same command finishes the run."""
    import errno

    import torch

    real_save, calls = torch.save, {"resume": 0}

    def full_disk(obj, f, *a, **k):
        name = getattr(f, "name", str(f))
        if "resume" in str(name):
            calls["resume"] += 1
            if calls["resume"] == 2:
                f.write(b"half a checkpoint")
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *a, **k)

    run = tmp_path / "run"
    argv = ["train", "--config", "fast", "--data", str(fer_csv), "--run-dir", str(run)]
    argv += ["--limit", "16", "--epochs", "2", "--batch-size", "8", "--threads", "1", "--set", "model=fast_fer_s"]
    monkeypatch.setattr(torch, "save", full_disk)
    assert main(argv) == 2
    assert "No space left on device" in capsys.readouterr().err
    ckpt_dir = run / "0-main" / "checkpoints"
    assert not list(ckpt_dir.glob(".*tmp"))
    assert torch.load(ckpt_dir / "resume.ckpt", weights_only=True)["epoch"] == 0  # the epoch-1 point, whole
    monkeypatch.setattr(torch, "save", real_save)
    assert main(argv) == 0
    import json

    assert json.loads((run / "summary.json").read_text())["phases"][0]["epochs_run"] == 2


def test_write_atomically_leaves_old_file_on_failure(tmp_path):
    from ferkit.atomic import CheckpointWriteError, write_atomically, write_text_atomically

    target = tmp_path / "f.json"
    write_text_atomically(target, "old")

    def broken(f):
        f.write(b"new but trunc")
        raise OSError(28, "No space left on device")

    with pytest.raises(CheckpointWriteError, match="No space left on device; the previous file"):
        write_atomically(target, broken)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_a_second_run_into_the_same_folder_is_refused(fer_csv, tmp_path):
    """While one process trains into a run folder (it holds run_dir/.lock), another is refused with a clear error."""
    import subprocess
    import sys
    import time

    run = tmp_path / "run"
    run.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import fcntl,os,time; f=open({str(run / '.lock')!r},'a+'); "
            "fcntl.flock(f, fcntl.LOCK_EX); f.write(str(os.getpid())); f.flush(); "
            "print('locked', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        argv = ["train", "--config", "fast", "--data", str(fer_csv), "--run-dir", str(run)]
        start = time.perf_counter()
        assert main([*argv, "--limit", "16", "--epochs", "1", "--threads", "1"]) == 2
        assert time.perf_counter() - start < 30 and not (run / "0-main").exists()  # refused before training
    finally:
        holder.kill()
    assert main([*argv, "--limit", "16", "--epochs", "1", "--threads", "1"]) == 0  # free again: it runs
