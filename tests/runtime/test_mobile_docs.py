"""docs/MOBILE.md's platform samples read these sidecar fields: each must exist, with the type the code expects."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "MOBILE.md"


def field_paths() -> set[tuple[str, ...]]:
    """Every `sidecar["a"]["b"]...` path written in the samples' comments."""
    paths = set()
    for m in re.finditer(r'sidecar((?:\["[a-z_]+"\])+)', DOC.read_text()):
        paths.add(tuple(re.findall(r'\["([a-z_]+)"\]', m.group(1))))
    return paths


def test_the_samples_name_the_fields_they_use():
    paths = field_paths()
    assert ("ferkit_contract", "labels") in paths and ("ferkit_contract", "temperature") in paths
    assert ("ferkit_contract", "face_alignment", "eye_center_px") in paths and ("tensors", "input", "shape") in paths


def test_every_field_the_samples_read_is_in_a_real_sidecar(trained, tmp_path):
    pytest.importorskip("ai_edge_litert", reason="the export extra (pip install 'ferkit[export]') is not installed")
    from ferkit.cli import main

    ckpt, _, _ = trained
    out = tmp_path / "m.tflite"
    assert main(["export", str(ckpt), "--format", "tflite", "--out", str(out), "--temperature", "fit"]) == 0
    sidecar = json.loads(out.with_name(out.name + ".json").read_text())
    expected = {"labels": list, "temperature": float, "eye_distance_px": float, "eye_center_px": list, "shape": list}
    for path in field_paths():
        node = sidecar
        for key in path:
            assert key in node, f"the samples read sidecar{''.join(f'[{k!r}]' for k in path)}; it has no {key!r}"
            node = node[key]
        if path[-1] in expected:
            assert isinstance(node, expected[path[-1]]), (path, type(node))
    assert sidecar["tensors"]["input"]["shape"] == [1, 1, 48, 48]
    assert len(sidecar["ferkit_contract"]["labels"]) == sidecar["tensors"]["output"]["shape"][1]
