"""The runtime layer never imports torch: prove it with torch made unimportable."""

import subprocess
import sys
import textwrap

from conftest import run_blocked


def test_base_package_imports_without_torch():
    r = run_blocked(
        """
        import ferkit, ferkit.data, ferkit.cli, ferkit.labels, ferkit.plots
        from ferkit.cli import main
        assert "torch" not in sys.modules
        print("ok", ferkit.CLASS_NAMES[0])
        """
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok angry"


def test_block_really_blocks():
    r = run_blocked("import torch")
    assert r.returncode != 0 and "torch is blocked" in r.stderr


SRC = __import__("pathlib").Path(__file__).resolve().parents[1] / "src" / "ferkit"
TORCH_LAYER = ("ferkit.models", "ferkit.training", "ferkit.export")


def package_modules() -> list[str]:
    """Every module of the package, found on disk (walking by import would import them here, unblocked)."""
    names = []
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def run_with_blocked(blocked: tuple[str, ...], code: str) -> subprocess.CompletedProcess:
    block = textwrap.dedent(
        f"""
        import sys
        BLOCKED = {blocked!r}
        class _Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ModuleNotFoundError(f"{{name}} is blocked in this test", name=name)
        sys.meta_path.insert(0, _Block())
        """
    )
    return subprocess.run([sys.executable, "-c", block + textwrap.dedent(code)], capture_output=True, text=True)


def test_every_runtime_module_imports_with_torch_blocked():
    runtime = [m for m in package_modules() if not m.startswith(TORCH_LAYER) and not m.endswith("__main__")]
    assert "ferkit.runtime" in runtime and "ferkit.serve" in runtime and "ferkit.cli.train_cmds" in runtime
    r = run_with_blocked(
        ("torch", "lightning", "pytorch_lightning", "torchvision"),
        f"""
        import importlib
        for name in {runtime!r}:
            importlib.import_module(name)
        assert "torch" not in sys.modules
        print(len({runtime!r}))
        """,
    )
    assert r.returncode == 0, r.stderr
    assert int(r.stdout) == len(runtime)


def test_models_and_export_import_with_lightning_blocked():
    below = [m for m in package_modules() if m.startswith(("ferkit.models", "ferkit.export"))]
    assert "ferkit.export.pipeline" in below and "ferkit.models.checkpoint" in below
    r = run_with_blocked(
        ("lightning", "pytorch_lightning", "lightning_fabric"),
        f"""
        import importlib
        for name in {below!r}:
            importlib.import_module(name)
        assert not any(m.startswith("lightning") for m in sys.modules)
        print("ok")
        """,
    )
    assert r.returncode == 0, r.stderr


def test_export_runs_without_lightning(trained, tmp_path):
    """`pip install '.[export]'` alone must export: the whole onnx export with Lightning unimportable."""
    ckpt, _, _ = trained
    out = tmp_path / "m.onnx"
    r = run_with_blocked(
        ("lightning", "pytorch_lightning", "lightning_fabric"),
        f"""
        from ferkit.cli import main
        assert main(["export", {str(ckpt)!r}, "--out", {str(out)!r}]) == 0
        assert not any(m.startswith("lightning") for m in sys.modules)
        """,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert out.is_file()
