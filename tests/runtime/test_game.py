"""Best Actor scoring: the per-face score, the steady tracker over frames, and `ferkit score` through the CLI."""

import json
from dataclasses import dataclass

import numpy as np
import pytest
from conftest import run_blocked

from ferkit.cli import main
from ferkit.game import ScoreTracker, expression_score, iou
from ferkit.labels import CLASS_NAMES


@dataclass
class F:
    box: tuple
    probabilities: dict


def face(p_target: float, target: str = "surprise", box=(100, 100, 80, 80)) -> F:
    """A face whose target probability is p_target; the rest shared evenly."""
    rest = (1 - p_target) / 6
    return F(box, {c: (p_target if c == target else rest) for c in CLASS_NAMES})


def test_expression_score_is_the_probability_in_percent():
    assert expression_score(face(0.8).probabilities, "surprise") == pytest.approx(80.0)
    assert expression_score(face(0.8).probabilities, "5") == pytest.approx(80.0)  # a label index works too
    with pytest.raises(ValueError, match="unknown expression 'smug'"):
        expression_score(face(0.8).probabilities, "smug")


def test_iou():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0.0


def test_smoothing_removes_frame_noise_and_follows_a_real_change():
    rng = np.random.default_rng(0)
    noisy = np.clip(0.6 + rng.normal(0, 0.15, 90), 0, 1)  # 3 s at 30 fps around 0.6
    tracker = ScoreTracker("surprise", half_life_s=0.25)
    scores = [tracker.update([face(p)]) for p in noisy]
    steady = np.array([s.smoothed for s in scores[30:]])
    raw = np.array([s.raw for s in scores[30:]])
    assert steady.std() < raw.std() / 2.5 and abs(steady.mean() - 60) < 4
    # A real change (the player really does it) is three quarters there within half a second.
    changed = [tracker.update([face(0.95)]) for _ in range(15)]
    assert changed[-1].smoothed > 60 + 35 * 0.7


def test_the_same_score_at_any_frame_rate():
    a, b = ScoreTracker("happy", fps=30), ScoreTracker("happy", fps=10)
    for tracker, fps in ((a, 30), (b, 10)):
        for i in range(fps + 1):  # 0 .. 1 s at 55%, then 0.5 s at 10%
            tracker.update([face(0.55, "happy")], t=i / fps)
        for i in range(fps // 2):
            last = tracker.update([face(0.1, "happy")], t=1 + (i + 1) / fps)
        # Weighted by time: three quarters of the way down after two half-lives, at either rate.
        assert last.smoothed == pytest.approx(10 + 45 * 0.25)


def test_a_missed_detection_holds_the_score_and_a_long_absence_resets_it():
    tracker = ScoreTracker("surprise", hold_s=0.5, fps=10)
    for _ in range(10):
        tracker.update([face(0.8)])
    held = tracker.update([])  # one frame without a face
    assert held.raw is None and held.smoothed == pytest.approx(80.0)
    for _ in range(6):
        gone = tracker.update([])
    assert gone.smoothed is None and gone.expression is None
    back = tracker.update([face(0.2)])
    assert back.smoothed == pytest.approx(20.0)  # a fresh start, not an average with the old player
    assert back.best == pytest.approx(80.0)  # the round's best is kept


def test_best_needs_a_settled_face_so_one_lucky_frame_cannot_win():
    tracker = ScoreTracker("fear", settle_s=0.5, fps=10)
    first = tracker.update([face(0.99, "fear")])
    assert first.best == 0.0
    for _ in range(5):
        last = tracker.update([face(0.3, "fear")])
    assert 30 <= last.best < 60


def test_follows_the_same_player_when_another_face_appears():
    tracker = ScoreTracker("happy")
    player = (100, 100, 80, 80)
    for _ in range(5):
        tracker.update([face(0.9, "happy", player)])
    bigger_stranger = face(0.0, "happy", (300, 50, 200, 200))
    s = tracker.update([bigger_stranger, face(0.9, "happy", (104, 102, 80, 80))])
    assert s.box == (104, 102, 80, 80) and s.smoothed == pytest.approx(90.0)
    fresh = ScoreTracker("happy").update([face(0.9, "happy", player), bigger_stranger])
    assert fresh.box == (300, 50, 200, 200)  # with no one followed yet, the nearest (largest) face


def test_bad_arguments_are_clear():
    with pytest.raises(ValueError, match="unknown expression"):
        ScoreTracker("bored")
    with pytest.raises(ValueError, match="half_life_s"):
        ScoreTracker("happy", half_life_s=0)
    tracker = ScoreTracker("happy")
    tracker.update([face(0.5, "happy")], t=1.0)
    with pytest.raises(ValueError, match="back in time"):
        tracker.update([face(0.5, "happy")], t=0.5)


def test_score_cli_on_a_photo_and_a_video(inputs, tiny_onnx, capsys):
    args = ["score", str(inputs / "hopper.jpg"), str(inputs / "clip.avi"), "--target", "happy", "--json"]
    assert main([*args, "--model", str(tiny_onnx), "--every", "2"]) == 0
    out = {r["source"].rsplit("/", 1)[-1]: r for r in json.loads(capsys.readouterr().out)}
    photo_rows, video_rows = out["hopper.jpg"]["frames"], out["clip.avi"]["frames"]
    assert len(photo_rows) == 1 and 0 <= photo_rows[0]["raw"] <= 100
    assert [r["frame"] for r in video_rows] == [0, 2, 4, 6, 8]
    assert [r["t"] for r in video_rows] == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8])  # the clip runs at 10 fps
    # The same frame over and over: the steady score equals it, and the round's score is that value.
    assert video_rows[-1]["smoothed"] == pytest.approx(video_rows[0]["raw"], abs=0.01)
    assert out["clip.avi"]["score"] == pytest.approx(video_rows[-1]["best"])
    assert main(["score", str(inputs / "hopper.jpg"), "--target", "bored", "--model", str(tiny_onnx)]) == 2
    assert "unknown expression 'bored'" in capsys.readouterr().err


def test_score_table_names_the_round_score(inputs, tiny_onnx, capsys):
    assert main(["score", str(inputs / "hopper.jpg"), "--target", "surprise", "--model", str(tiny_onnx)]) == 0
    assert "score" in capsys.readouterr().out


def test_game_runs_with_torch_blocked():
    r = run_blocked(
        """
        from ferkit.game import ScoreTracker
        import ferkit.cli.game_cmds
        assert "torch" not in sys.modules
        print("ok")
        """
    )
    assert r.returncode == 0, r.stderr
