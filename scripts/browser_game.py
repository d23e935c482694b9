"""Play the web game in headless Chromium with a fake camera, through the real server (loopback only).

    python scripts/browser_game.py shots docs/screens     # screenshots of each screen at 1280x720 and 390x844

A clip made from a face photo (matplotlib's sample photo, found at run time, never committed) is fed to Chromium's
fake camera (`--use-file-for-fake-video-capture`); `tests/runtime/test_browser_game.py` uses `play_round` to assert
that a round's score appears.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HOST = "127.0.0.1"


def chromium() -> str | None:
    return next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)


def write_y4m(photo: Path, out: Path, frames: int = 30, size: tuple[int, int] = (640, 480)) -> Path:
    """A still clip of the photo's luma in YUV4MPEG2 (4:2:0, neutral chroma): what Chromium's fake camera reads."""
    import cv2
    import numpy as np

    w, h = size
    gray = cv2.resize(cv2.cvtColor(cv2.imread(str(photo)), cv2.COLOR_BGR2GRAY), (w, h))
    chroma = np.full((h // 2, w // 2), 128, np.uint8).tobytes()
    with out.open("wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            f.write(b"FRAME\n" + gray.tobytes() + chroma + chroma)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Server:
    """`ferkit serve` on a free loopback port, stopped on exit."""

    def __enter__(self) -> str:
        import httpx

        self.port = free_port()
        cmd = [sys.executable, "-m", "ferkit", "serve", "--host", HOST, "--port", str(self.port)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for _ in range(150):
            try:
                httpx.get(f"http://{HOST}:{self.port}/health", timeout=1)
                return f"http://{HOST}:{self.port}"
            except httpx.HTTPError:
                time.sleep(0.2)
        self.proc.kill()
        raise RuntimeError("the server did not start")

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class Browser:
    """Headless Chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe: no port, no extra
    package): open a page, evaluate JavaScript in it, take screenshots."""

    def __init__(self, clip: Path, size: tuple[int, int] = (1280, 720)) -> None:
        exe = chromium()
        if exe is None:
            raise RuntimeError("no chromium on this machine (Debian: apt-get install chromium)")
        # Chromium's helper processes may still write into the profile for a moment after it is stopped.
        self.profile = tempfile.TemporaryDirectory(ignore_cleanup_errors=True)
        to_chrome_r, self._w = os.pipe()
        self._r, from_chrome_w = os.pipe()
        cmd = [
            exe,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--remote-debugging-pipe",
            f"--user-data-dir={self.profile.name}",
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={clip}",
            f"--window-size={size[0]},{size[1]}",
            "--hide-scrollbars",
            "about:blank",
        ]

        def fds() -> None:  # the browser reads commands on fd 3 and writes replies on fd 4
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)

        self.proc = subprocess.Popen(  # its own process group: close() stops the helpers with it
            cmd,
            preexec_fn=fds,
            pass_fds=(3, 4),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._id, self._buf = 0, b""
        targets = self.call("Target.getTargets")["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        self.session = self.call("Target.attachToTarget", targetId=page["targetId"], flatten=True)["sessionId"]

    def call(self, method: str, session: str | None = None, **params) -> dict:
        import json

        self._id += 1
        msg = {"id": self._id, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        while True:
            while b"\0" not in self._buf:
                chunk = os.read(self._r, 1 << 20)
                if not chunk:
                    raise RuntimeError("chromium closed the DevTools pipe")
                self._buf += chunk
            raw, self._buf = self._buf.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def page(self, method: str, **params) -> dict:
        return self.call(method, self.session, **params)

    def open(self, url: str, size: tuple[int, int]) -> None:
        self.page(
            "Emulation.setDeviceMetricsOverride",
            width=size[0],
            height=size[1],
            deviceScaleFactor=1,
            mobile=size[0] < size[1],
        )
        self.page("Page.enable")
        self.page("Page.navigate", url=url)

    def text(self, element_id: str) -> str:
        expr = f"(document.getElementById({element_id!r}) || {{}}).textContent || ''"
        return self.page("Runtime.evaluate", expression=expr, returnByValue=True)["result"].get("value", "")

    def wait_for(self, element_id: str, pattern: str, timeout: float = 60) -> str:
        import re

        end = time.monotonic() + timeout
        while time.monotonic() < end:
            value = self.text(element_id)
            if re.fullmatch(pattern, value):
                return value
            time.sleep(0.25)
        raise TimeoutError(f"#{element_id} never matched {pattern!r}; last: {value!r}")

    def screenshot(self, path: Path) -> Path:
        import base64

        path.write_bytes(base64.b64decode(self.page("Page.captureScreenshot", format="png")["data"]))
        return path

    def close(self) -> None:
        import signal

        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        os.close(self._r)
        os.close(self._w)
        self.profile.cleanup()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


ROUND = "?rounds=1&countdown=1&scoring=3&result=60&autoplay=1"


def play_round(clip: Path, size: tuple[int, int] = (1280, 720)) -> tuple[str, str]:
    """One short round of the game on the clip: (the page's status line once the round is scored, its score)."""
    with Server() as base, Browser(clip, size) as b:
        b.open(f"{base}/{ROUND}", size)
        status = b.wait_for("status", r"Round 1: \d+ points for \w+")
        return status, b.text("score")


def screenshots(out: Path) -> list[Path]:
    """The start screen and a scored round, at 1280x720 and 390x844."""
    from ferkit.media import sample_photo

    out.mkdir(parents=True, exist_ok=True)
    shots = []
    with tempfile.TemporaryDirectory() as tmp:
        clip = write_y4m(sample_photo(), Path(tmp) / "face.y4m")
        with Server() as base:
            for size in ((1280, 720), (390, 844)):
                with Browser(clip, size) as b:
                    b.open(f"{base}/", size)
                    b.wait_for("status", r"Press Play.*")
                    shots.append(b.screenshot(out / f"game-start-{size[0]}x{size[1]}.png"))
                    b.open(f"{base}/{ROUND}", size)
                    b.wait_for("status", r"Round 1: \d+ points for \w+")
                    shots.append(b.screenshot(out / f"game-round-{size[0]}x{size[1]}.png"))
    return shots


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "shots":
        for p in screenshots(Path(sys.argv[2])):
            print(p)
    else:
        print(__doc__)
