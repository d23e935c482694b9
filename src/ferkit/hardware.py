"""What the CPU can do natively, read from its flags (no torch): bf16 for training, exact int8 dot products."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def _cpuinfo(cpuinfo: str | Path = "/proc/cpuinfo") -> str:
    try:
        return Path(cpuinfo).read_text()
    except OSError:  # not Linux
        return ""


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> list[str]:
    """The flags line of /proc/cpuinfo; [] where there is none (not Linux)."""
    text = _cpuinfo(cpuinfo)
    return next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])


def cpu_has_native_bf16(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """True where the CPU computes bf16 in hardware (AVX512-BF16 or AMX); without flags to read, False (fp32 is
    never the slow choice).

    oneDNN accepts bf16 on any AVX-512 CPU (`torch.ops.mkldnn._is_mkldnn_bf16_supported()` says True there) but
    emulates it: vgg_fer trained 3.9x slower than in fp32 on an AVX-512 Xeon without these flags (docs/RESULTS.md).
    """
    flags = cpu_flags(cpuinfo)
    return "avx512_bf16" in flags or "amx_bf16" in flags


def cpu_has_vnni(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """True where x86 int8 dot products are exact (AVX512-VNNI or AVX-VNNI).

    Without VNNI, ONNX Runtime's int8 convolutions multiply through 16-bit saturating adds (vpmaddubsw), which
    overflow with full 8-bit weights: int8 activations then flipped 29% of the top expressions on an AVX2-only
    EPYC. Its documented remedy is 7-bit weights (reduce_range), used there.
    """
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return True  # ARM's int8 dot products do not saturate this way
    flags = cpu_flags(cpuinfo)
    return "avx512_vnni" in flags or "avx_vnni" in flags


def machine_description() -> dict:
    """The CPU a figure was measured on (speeds are only comparable within one machine)."""
    from importlib.metadata import PackageNotFoundError, version

    model = next(
        (line.split(":", 1)[1].strip() for line in _cpuinfo().splitlines() if line.startswith("model name")),
        platform.processor() or platform.machine(),
    )
    try:
        torch_version = version("torch")
    except PackageNotFoundError:
        torch_version = None
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "native_bf16": cpu_has_native_bf16(),
        "vnni": cpu_has_vnni(),
        "torch": torch_version,
    }
