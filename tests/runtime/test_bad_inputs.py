"""Every case of the bad-input corpus (tests/bad_inputs.py) through the Python API, the CLI and the HTTP API:
no traceback, no HTTP 500, a clear error naming the problem, and the good inputs' results kept."""

from __future__ import annotations

import json

import pytest
from bad_inputs import array_cases, file_cases

from ferkit.cli import main
from ferkit.preprocess import ImageError
from ferkit.runtime import Recognizer

FILES = file_cases()
ARRAYS = array_cases()


@pytest.fixture(scope="module")
def rec(tiny_onnx) -> Recognizer:
    return Recognizer.from_file(tiny_onnx)


@pytest.mark.parametrize("name", sorted(ARRAYS))
def test_python_api_arrays(rec, name):
    arr, expected = ARRAYS[name]
    if expected == "ok":
        assert isinstance(rec.predict(arr), list)
    else:
        with pytest.raises(ImageError) as e:
            rec.predict(arr)
        assert len(str(e.value)) > 10


@pytest.mark.parametrize("name", sorted(FILES))
def test_python_api_bytes_and_files(rec, name, tmp_path):
    data, expected = FILES[name]
    path = tmp_path / name
    path.write_bytes(data)
    for src in (data, path):
        if expected == "ok":
            assert isinstance(rec.predict(src), list)
        else:
            with pytest.raises(ImageError, match=name if src is path else "image bytes"):
                rec.predict(src)


def test_cli_reports_every_bad_file_and_keeps_the_good(tiny_onnx, tmp_path, capsys):
    for name, (data, _) in FILES.items():
        (tmp_path / name).write_bytes(data)
    assert main(["predict", str(tmp_path), "--model", str(tiny_onnx), "--json"]) == 1
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    got = {r["source"].rsplit("/", 1)[-1] for r in json.loads(out.out)}
    assert got == {n for n, (_, e) in FILES.items() if e == "ok"}
    for name, (_, expected) in FILES.items():
        if expected == "error":
            assert name in out.err, name


def test_http_never_answers_500(rec):
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    from ferkit.serve import create_app

    client = TestClient(create_app(rec, max_bytes=1_000_000), raise_server_exceptions=False)
    for name, (data, expected) in FILES.items():
        r = client.post("/predict", content=data)
        assert r.status_code == (200 if expected == "ok" else 400), (name, r.status_code, r.text[:200])
        if expected == "error":
            assert r.json()["detail"], name
        files = client.post("/predict", files={"file": (name, data, "application/octet-stream")})
        assert files.status_code in (200, 400), (name, files.status_code)
