"""The runtime layer never imports torch: prove it with torch made unimportable."""

import subprocess
import sys
import textwrap

BLOCK_TORCH = textwrap.dedent(
    """
    import sys
    class _Block:
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch.") or name in ("lightning", "pytorch_lightning"):
                raise ImportError(f"torch is blocked in this test ({name})")
    sys.meta_path.insert(0, _Block())
    """
)


def run_blocked(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK_TORCH + textwrap.dedent(code)], capture_output=True, text=True)


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
