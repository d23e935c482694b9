"""The web game played in a real browser: headless Chromium, a fake camera fed a face clip, the real server."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import browser_game

pytestmark = pytest.mark.skipif(
    browser_game.chromium() is None, reason="no Chromium on this machine (Debian: apt-get install chromium)"
)


@pytest.mark.parametrize("size", [(1280, 720), (390, 844)])
def test_a_round_is_played_and_scored(photo, tmp_path, size):
    clip = browser_game.write_y4m(Path(photo), tmp_path / "face.y4m")
    status, score = browser_game.play_round(clip, size)
    assert re.fullmatch(r"Round 1: \d+ points for \w+", status)
    assert score.isdigit() and 0 <= int(score) <= 100 and score in status
