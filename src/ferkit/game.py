"""Best Actor scoring: how well a face shows the expression the game asked for, steady over video frames.

The score of one face is 100 x the model's calibrated probability of the target expression (the bundled
model carries a temperature fitted on PublicTest, so "70" means the model would call such faces that
expression about 70% of the time). A single frame is noisy: blinks, motion blur and a detector that misses a
frame now and then. `ScoreTracker` turns a stream of frames into a steady score:

- it follows one player: the face that overlaps the last one most, else the largest face (the nearest person);
- it averages the 7 probabilities over time with an exponential weight of a given half-life in seconds, so
  the score does not depend on the frame rate;
- a face lost for less than `hold_s` keeps its score (a missed detection is not a drop); after that the
  player is gone and the average starts afresh;
- `best`, the round's result, only counts once a face has been held for `settle_s`: one lucky frame cannot win.

No torch here: this is the runtime layer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ferkit.labels import CLASS_NAMES, name_to_label


class FaceLike(Protocol):
    box: tuple[int, int, int, int]  # x, y, w, h
    probabilities: Mapping[str, float]


def expression_score(probabilities: Mapping[str, float], target: str) -> float:
    """One face's score for `target`, 0..100: its calibrated probability, in percent."""
    name = CLASS_NAMES[name_to_label(target)]
    if name not in probabilities:
        raise ValueError(f"the probabilities lack {name!r}; they have {', '.join(probabilities)}")
    return 100.0 * float(probabilities[name])


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax2, bx2) - max(a[0], b[0]))
    ih = max(0.0, min(ay2, by2) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


@dataclass(frozen=True)
class Score:
    """The tracker's answer for one frame."""

    t: float  # seconds since the first frame
    target: str
    raw: float | None  # this frame's score, 0..100; None when no face was found
    smoothed: float | None  # the steady score, 0..100; None before any face or after the player left
    best: float  # the round's result so far: the best settled smoothed score
    expression: str | None  # what the model sees in the smoothed probabilities
    box: tuple[int, int, int, int] | None  # the followed face

    def to_dict(self) -> dict:
        r = lambda v: None if v is None else round(v, 2)  # noqa: E731
        return {
            "t": round(self.t, 3),
            "target": self.target,
            "raw": r(self.raw),
            "smoothed": r(self.smoothed),
            "best": round(self.best, 2),
            "expression": self.expression,
            "box": list(self.box) if self.box else None,
        }


class ScoreTracker:
    """Feed it each frame's faces (`Recognizer.predict` output) and read a steady score."""

    def __init__(
        self,
        target: str,
        half_life_s: float = 0.25,
        hold_s: float = 0.5,
        settle_s: float = 0.5,
        fps: float = 30.0,
        labels: Sequence[str] = CLASS_NAMES,
    ) -> None:
        if half_life_s <= 0 or hold_s < 0 or settle_s < 0 or fps <= 0:
            raise ValueError("half_life_s and fps must be > 0; hold_s and settle_s >= 0")
        self.target = CLASS_NAMES[name_to_label(target)]
        self.labels = tuple(labels)
        self._k = self.labels.index(self.target)  # the target's column in the model's output
        self.half_life_s, self.hold_s, self.settle_s, self.fps = half_life_s, hold_s, settle_s, fps
        self.reset()

    def reset(self) -> None:
        """A new round: forget the player and the best score."""
        self._frames = 0
        self._t0: float | None = None
        self._mean: np.ndarray | None = None  # (7,) smoothed probabilities
        self._box: tuple[int, int, int, int] | None = None
        self._last_seen = -math.inf
        self._seen_since = math.inf
        self._last_t = -math.inf
        self.best = 0.0

    def _pick(self, faces: Sequence[FaceLike]) -> FaceLike | None:
        if not faces:
            return None
        if self._box is not None:
            overlap = max(faces, key=lambda f: iou(f.box, self._box))
            if iou(overlap.box, self._box) > 0.1:
                return overlap
        return max(faces, key=lambda f: f.box[2] * f.box[3])

    def update(self, faces: Sequence[FaceLike], t: float | None = None) -> Score:
        """One frame's faces at time t (seconds; default: frame count / fps) -> the score after it."""
        t = self._frames / self.fps if t is None else float(t)
        if not math.isfinite(t):  # inf or nan would poison every later comparison of the session
            raise ValueError(f"frame time {t} is not a finite number of seconds")
        self._frames += 1
        if t < self._last_t:
            raise ValueError(f"frame time {t} s goes back in time (the previous frame was at {self._last_t} s)")
        if self._t0 is None:
            self._t0 = t
        self._last_t = t
        face = self._pick(faces)
        if face is None:
            if t - self._last_seen > self.hold_s:  # the player is gone: start afresh when they return
                self._mean, self._box, self._seen_since = None, None, math.inf
            return self._score(t, None)
        p = np.array([face.probabilities[name] for name in self.labels], np.float64)  # (7,)
        if self._mean is None:
            self._mean, self._seen_since = p, t
        else:
            # Weighted by the time since the last observation, not by frame count: any frame rate scores alike.
            keep = 0.5 ** ((t - self._last_seen) / self.half_life_s)
            self._mean = keep * self._mean + (1 - keep) * p
        self._box, self._last_seen = tuple(face.box), t
        return self._score(t, 100.0 * float(p[self._k]))

    def _score(self, t: float, raw: float | None) -> Score:
        smoothed = None
        expression = None
        if self._mean is not None:
            smoothed = 100.0 * float(self._mean[self._k])
            expression = self.labels[int(np.argmax(self._mean))]
            if t - self._seen_since >= self.settle_s:
                self.best = max(self.best, smoothed)
        return Score(t - (self._t0 or 0.0), self.target, raw, smoothed, self.best, expression, self._box)
