"""The CLI never loses work: bad files among good ones, empty videos, shared file stems, --every (issue 21, 10)."""

from __future__ import annotations

import json

import pytest

from ferkit.cli import main


def test_a_corrupt_video_among_the_inputs_keeps_the_others_results(inputs, tiny_onnx, capsys):
    (inputs / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    assert main(["predict", str(inputs), "--model", str(tiny_onnx), "--every", "5", "--json"]) == 1
    out = capsys.readouterr()
    records = json.loads(out.out)
    assert {r["source"].rsplit("/", 1)[-1] for r in records} >= {"hopper.jpg", "crop.png", "clip.avi"}
    assert "broken.mp4" in out.err


def test_score_of_an_empty_video_is_an_error_not_a_crash(inputs, tiny_onnx, capsys):
    import cv2

    empty = inputs / "empty.avi"
    writer = cv2.VideoWriter(str(empty), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 64))
    writer.release()  # no frame written
    photo = inputs / "hopper.jpg"
    assert main(["score", str(empty), str(photo), "--target", "happy", "--model", str(tiny_onnx), "--json"]) == 1
    out = capsys.readouterr()
    assert [r["source"] for r in json.loads(out.out)] == [str(photo)]
    assert "empty.avi" in out.err


@pytest.mark.parametrize("cmd", ["predict", "score"])
@pytest.mark.parametrize("every", ["0", "-3", "two"])
def test_every_must_be_a_positive_integer(inputs, cmd, every, capsys):
    extra = ["--target", "happy"] if cmd == "score" else []
    with pytest.raises(SystemExit) as e:
        main([cmd, str(inputs), "--every", every, *extra])
    assert e.value.code == 2 and "--every" in capsys.readouterr().err


def test_inputs_sharing_a_stem_do_not_overwrite_each_others_outputs(tmp_path, tiny_onnx):
    import shutil

    import cv2
    from conftest import make_faces

    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        cv2.imwrite(str(tmp_path / sub / "face.png"), make_faces(1, seed=ord(sub))[0][0])
    out = tmp_path / "out"
    args = [str(tmp_path / "a" / "face.png"), str(tmp_path / "b" / "face.png"), "--model", str(tiny_onnx)]
    assert main(["predict", *args, "--annotate", str(out), "--chart", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["face-1.jpg", "face-1_face0.png", "face.jpg", "face_face0.png"]
    shutil.rmtree(out)


@pytest.mark.parametrize(
    "cmd, flags, bar",
    [("predict", ["--csv"], "predicting"), ("score", ["--target", "happy", "--json"], "scoring happy")],
)
def test_progress_goes_to_stderr_so_stdout_stays_clean(inputs, tiny_onnx, cmd, flags, bar):
    """Long runs show a bar (forced on, as on a terminal) on stderr; stdout stays a clean CSV / JSON."""
    import csv
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "FERKIT_PROGRESS": "1"}
    r = subprocess.run(
        [sys.executable, "-m", "ferkit", cmd, str(inputs / "clip.avi"), "--model", str(tiny_onnx), *flags],
        capture_output=True,
        text=True,
        env=env,
    )
    assert r.returncode == 0, r.stderr
    assert bar in r.stderr
    if cmd == "predict":
        rows = list(csv.DictReader(r.stdout.splitlines()))
        assert len(rows) == 1 and rows[0]["source"].endswith("clip.avi")  # every 10th of 10 frames
    else:
        (scored,) = json.loads(r.stdout)
        assert len(scored["frames"]) == 10 and scored["frames"][-1]["t"] == pytest.approx(0.9)
