"""The HTTP API and web page (`ferkit serve`) on the bundled model: predict, score with sessions, bad input."""

import json
import socket
import ssl
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import make_faces, run_blocked, served

from ferkit.runtime import Recognizer
from ferkit.serve import Sessions, UnknownSession, create_app

pytest.importorskip("httpx", reason="the test client needs httpx (pip install 'ferkit[dev]')")
from fastapi.testclient import TestClient


@pytest.fixture(scope="module")
def rec() -> Recognizer:
    return Recognizer.default()


@pytest.fixture(scope="module")
def client(rec) -> TestClient:
    return TestClient(create_app(rec, max_bytes=2_000_000, max_sessions=2))


def png(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", image)
    assert ok
    return buf.tobytes()


def test_health_names_the_model_and_labels(client, rec):
    r = client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["labels"] == list(rec.labels)
    assert body["model"] == rec.metadata["model_name"] and body["contract"]["input"]["shape"] == ["N", 1, 48, 48]


def test_predict_equals_the_recognizer_raw_and_multipart(client, rec):
    crop = make_faces(1, seed=3)[0][0]  # (48, 48) uint8: classified as a crop
    want = rec.predict(crop)[0].to_dict()
    raw = client.post("/predict", content=png(crop), headers={"content-type": "image/png"})
    form = client.post("/predict", files={"file": ("face.png", png(crop), "image/png")})
    for r in (raw, form):
        assert r.status_code == 200, r.text
        (face,) = r.json()["faces"]
        assert face["expression"] == want["expression"] and face["box"] == [0, 0, 48, 48]
        assert face["probabilities"] == pytest.approx(want["probabilities"], abs=1e-5)


def test_predict_finds_the_face_in_a_photo(client, photo):
    r = client.post("/predict", content=Path(photo).read_bytes())
    assert r.status_code == 200
    (face,) = r.json()["faces"]
    assert face["eyes"] is not None and sum(face["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"", 400, "holds no image"),
        (b"this is not an image", 400, "image bytes"),
        (png(np.zeros((48, 48), np.uint8))[:40], 400, "image bytes"),  # a truncated PNG
        (b"\x00" * 2_000_001, 413, "the limit is 2,000,000"),
    ],
)
def test_bad_input_gets_a_clear_error_not_a_500(client, body, status, message):
    r = client.post("/predict", content=body)
    assert r.status_code == status
    assert message in r.json()["detail"]


def test_a_chunked_body_over_the_limit_is_cut_off(client):
    def chunks():  # no Content-Length: the server must count as it reads
        for _ in range(40):
            yield b"\x00" * 100_000

    r = client.post("/predict", content=chunks())
    assert r.status_code == 413 and "2,000,000 bytes, the limit" in r.json()["detail"]


def test_a_form_without_a_file_is_refused(client):
    boundary = "ferkit-test"
    body = f'--{boundary}\r\nContent-Disposition: form-data; name="note"\r\n\r\nno file\r\n--{boundary}--\r\n'
    multipart = client.post(
        "/predict", content=body.encode(), headers={"content-type": f"multipart/form-data; boundary={boundary}"}
    )
    assert multipart.status_code == 400 and "holds no file" in multipart.json()["detail"]


def test_curl_data_binary_is_taken_as_the_image(client, photo):
    # curl --data-binary @photo.jpg sends the bytes labelled application/x-www-form-urlencoded
    r = client.post(
        "/predict", content=Path(photo).read_bytes(), headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert r.status_code == 200 and len(r.json()["faces"]) == 1


def test_score_alone_and_unknown_target(client, rec):
    crop = make_faces(1, seed=4)[0][0]
    p = rec.predict(crop)[0].probabilities["happy"]
    r = client.post("/score?target=happy", content=png(crop))
    assert r.status_code == 200
    body = r.json()
    assert body["raw"] == pytest.approx(100 * p, abs=0.01) and body["smoothed"] == pytest.approx(body["raw"], abs=0.01)
    assert body["faces"][0]["target_score"] == pytest.approx(100 * p, abs=0.01)
    r = client.post("/score?target=smug", content=png(crop))
    assert r.status_code == 400 and "smug" in r.json()["detail"]


def test_score_sessions_smooth_over_frames_and_reset(rec):
    client = TestClient(create_app(rec))
    a, b = make_faces(2, seed=5)[0]
    pa, pb = (100 * rec.predict(x)[0].probabilities["sad"] for x in (a, b))
    p1 = client.post("/session").json()["session"]
    first = client.post(f"/score?target=sad&session={p1}&t=0", content=png(a)).json()
    second = client.post(f"/score?target=sad&session={p1}&t=0.25", content=png(b)).json()
    # one half-life later the steady score is halfway between the two frames' scores
    assert second["raw"] == pytest.approx(pb, abs=0.01)
    assert second["smoothed"] == pytest.approx((pa + pb) / 2, abs=0.02)
    assert second["t"] == pytest.approx(0.25) and first["best"] == 0.0  # not settled yet at t=0
    back = client.post(f"/score?target=sad&session={p1}&t=0.1", content=png(a))
    assert back.status_code == 400 and "back in time" in back.json()["detail"]
    fresh = client.post(f"/score?target=sad&session={p1}&t=0.3&reset=true", content=png(b)).json()
    assert fresh["smoothed"] == pytest.approx(pb, abs=0.01) and fresh["t"] == 0.0  # a new round


def test_sessions_are_bounded_and_a_new_target_starts_a_new_round():
    sessions = Sessions(capacity=2)
    a = sessions.new()
    t1 = sessions.get(a, "happy", reset=False)
    assert sessions.get(a, "happy", reset=False) is t1
    assert sessions.get(a, "sad", reset=False) is not t1
    b, c = sessions.new(), sessions.new()
    assert len(sessions) == 2 and len({a, b, c}) == 3 and len(c) >= 20  # "a", least recently used, was dropped
    with pytest.raises(UnknownSession):
        sessions.get(a, "happy", reset=False)


def test_sessions_expire_and_unknown_ids_are_refused(rec):
    now = [0.0]
    sessions = Sessions(capacity=10, ttl_s=60, clock=lambda: now[0])
    sid = sessions.new()
    sessions.get(sid, "happy", reset=False)
    now[0] = 59.0
    sessions.get(sid, "happy", reset=False)  # used within the time: kept, and the clock restarts
    now[0] = 120.0
    with pytest.raises(UnknownSession, match="POST /session"):
        sessions.get(sid, "happy", reset=False)
    client = TestClient(create_app(rec))
    crop = png(make_faces(1, seed=4)[0][0])
    r = client.post("/score?target=happy&session=made-up-by-client&t=0", content=crop)
    assert r.status_code == 404 and "start one with POST /session" in r.json()["detail"]


def test_each_session_keeps_its_own_face_tracker_and_loses_it_with_the_session(rec):
    now = [0.0]
    sessions = Sessions(capacity=10, ttl_s=60, clock=lambda: now[0], face_tracker=rec.tracker)
    a, b = sessions.new(), sessions.new()
    assert sessions.face_tracker(a) is sessions.face_tracker(a) is not sessions.face_tracker(b)
    assert sessions.face_tracker("made-up") is None
    now[0] = 120.0
    sessions.new()  # expires a and b
    assert sessions.face_tracker(a) is None and not sessions._faces


@pytest.mark.parametrize("t", ["inf", "nan", "1e309", "-inf"])
def test_non_finite_times_are_refused_and_the_session_survives(rec, t):
    client = TestClient(create_app(rec))
    sid = client.post("/session").json()["session"]
    crop = png(make_faces(1, seed=4)[0][0])
    r = client.post(f"/score?target=happy&session={sid}&t={t}", content=crop)
    assert r.status_code in (400, 422) and "finite" in json.dumps(r.json())
    assert client.post(f"/score?target=happy&session={sid}&t=0.5", content=crop).status_code == 200


def test_a_multipart_upload_over_the_limit_is_cut_off_while_streaming(client):
    boundary = "ferkit-test"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()
    sent = [0]

    def chunks():  # chunked (no Content-Length): 4 MB of file behind a 2 MB limit
        yield head
        for _ in range(40):
            sent[0] += 100_000
            yield b"\x00" * 100_000
        yield f"\r\n--{boundary}--\r\n".encode()

    r = client.post("/predict", content=chunks(), headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert r.status_code == 413 and "the limit" in r.json()["detail"]


def test_cross_site_posts_are_refused_and_cors_is_off_by_default(rec):
    client = TestClient(create_app(rec))
    crop = png(make_faces(1, seed=4)[0][0])
    evil = client.post(
        "/predict", content=crop, headers={"origin": "https://evil.example", "content-type": "text/plain"}
    )
    assert evil.status_code == 403 and "access-control-allow-origin" not in evil.headers
    same = client.post("/predict", content=crop, headers={"origin": "http://testserver"})
    assert same.status_code == 200
    assert client.get("/docs").status_code == 404 and client.get("/openapi.json").status_code == 404
    allowed = TestClient(create_app(rec, allow_origins=["https://game.example"], docs=True))
    r = allowed.post("/predict", content=crop, headers={"origin": "https://game.example"})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://game.example"
    assert allowed.get("/docs").status_code == 200
    pinned = TestClient(create_app(rec, allowed_hosts=["game.local"]))
    assert pinned.get("/health").status_code == 400  # the test client's Host is "testserver"


def test_the_page_inserts_labels_as_text_only(client):
    page = client.get("/").text
    assert "innerHTML" not in page and "textContent" in page and "/session" in page


def test_the_web_page_is_served(client):
    r = client.get("/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert "Best Actor" in r.text and "/score?" in r.text


def test_serve_is_torch_free():
    r = run_blocked(
        """
        import ferkit.serve, ferkit.cli
        from fastapi.testclient import TestClient
        client = TestClient(ferkit.serve.create_app())
        assert client.get("/health").status_code == 200 and "torch" not in sys.modules
        print("ok")
        """
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"


def test_cli_has_serve():
    from ferkit.cli import build_parser

    args = build_parser().parse_args(["serve", "--port", "8123", "--host", "0.0.0.0"])
    assert args.port == 8123 and args.host == "0.0.0.0" and args.func.__name__ == "cmd_serve"


def test_https_serves_with_a_certificate_made_for_this_machine(tmp_path):
    """`ferkit serve --https` on loopback: a self-signed certificate naming 127.0.0.1, and a real TLS round trip."""
    import httpx

    from ferkit.tls import self_signed

    cert, key = self_signed(tmp_path, ["127.0.0.1", "localhost"])
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    trust = ssl.create_default_context(cafile=str(cert))
    with served("--cert", str(cert), "--key", str(key), scheme="https", verify=trust) as (url, server):
        r = httpx.get(f"{url}/health", verify=trust, timeout=5)
        assert r.status_code == 200 and r.json()["status"] == "ok"
    assert f"{url}/" in server.out


def _raw_request(url: str, head: bytes, body: bytes) -> socket.socket:
    """A hand-made HTTP request on a raw socket: only the first part of the body it announces is sent."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(head + body)
    return sock


def test_stalled_bodies_get_408_and_disconnects_leave_no_traceback(photo):
    """A client that announces 100 kB and sends 10 bytes is answered 408 once --body-timeout passes (it does not
    hold the connection for good); one that hangs up mid-body costs nothing: no traceback, the server serves on."""
    import httpx

    head = b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n"
    with served("--body-timeout", "1") as (url, server):
        sock = _raw_request(url, head, b"0123456789")
        t0 = time.monotonic()
        reply = b""
        while chunk := sock.recv(4096):  # the server answers, then closes the connection
            reply += chunk
        reply, waited = reply.decode("latin-1"), time.monotonic() - t0
        sock.close()
        assert reply.startswith("HTTP/1.1 408"), reply[:200]
        assert "did not arrive in time" in reply and 0.5 < waited < 8
        for _ in range(3):  # hang up mid-body
            _raw_request(url, head, b"x" * 5000).close()
        time.sleep(0.5)
        r = httpx.post(f"{url}/predict", content=Path(photo).read_bytes(), timeout=30)
        assert r.status_code == 200 and len(r.json()["faces"]) == 1
    assert "Traceback" not in server.err and "Exception in ASGI" not in server.err, server.err[-2000:]


def test_cert_and_key_go_together(capsys):
    from ferkit.cli import main

    assert main(["serve", "--cert", "c.pem"]) == 2
    assert "--cert and --key go together" in capsys.readouterr().err
