"""A torch model rebuilt from a ferkit ONNX file, so that a shipped model can be exported to phone formats without
its training checkpoint (which does not outlive the session that trained it).

The ONNX file names its architecture (`model_name` and `recipe.model_args` in its metadata); the registry builds it
and the graph's weights are copied in, in graph order. torch's exporter folds each BatchNorm that directly follows
a convolution into that convolution's weight and bias (and ferkit.models.fold one after a conv and a max-pool), so
such a BatchNorm is set to the identity plus the folded bias; BatchNorms left in the graph are copied as they are.
A folded file's own rewrites (normalisation, padded channels, head scale) are undone first, from its metadata.
The result is checked against the ONNX file itself on real faces before anything is exported from it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ferkit.errors import OnnxRebuildError
from ferkit.models.fold import FOLDING_KEY, unfold_graph_weights
from ferkit.models.registry import create_model_from_metadata


def _graph_weights(path: Path) -> tuple[list[tuple[np.ndarray, np.ndarray | None]], list[tuple], list[tuple]]:
    """(conv weight, bias) per Conv node, BatchNormalization (scale, B, mean, var, eps) per node, Gemm (W, b).
    A QLinearConv (an int8 file) gives its weights dequantized (`_dequantized_conv`)."""
    from onnx import numpy_helper

    from ferkit.errors import require

    onnx = require("onnx", "export")
    g = onnx.load(str(path)).graph
    init = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    consts = {
        n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in g.node if n.op_type == "Constant" and n.attribute
    }
    values = {**consts, **init}
    convs, bns, gemms = [], [], []
    for n in g.node:
        if n.op_type == "Identity" and n.input[0] in values:  # the exporter shares equal weights through aliases
            values[n.output[0]] = values[n.input[0]]
        elif n.op_type == "Cast" and n.input[0] in values:  # float16-stored weights (export.onnx.store_weights_fp16)
            values[n.output[0]] = values[n.input[0]].astype(np.float32)
        elif n.op_type == "Conv":
            convs.append((values[n.input[1]], values[n.input[2]] if len(n.input) > 2 and n.input[2] else None))
        elif n.op_type == "QLinearConv":
            convs.append(_dequantized_conv([values.get(i) for i in n.input]))
        elif n.op_type == "BatchNormalization":
            eps = next((a.f for a in n.attribute if a.name == "epsilon"), 1e-5)
            bns.append((*(values[i] for i in n.input[1:5]), eps))
        elif n.op_type in ("Gemm", "MatMul") and n.input[1] in values:
            w = values[n.input[1]]  # Gemm with transB=1 stores torch's (out, in); otherwise (in, out)
            trans = next((a.i for a in n.attribute if a.name == "transB"), 0)
            bias = values.get(n.input[2]) if len(n.input) > 2 else None
            gemms.append((w if trans else w.T, bias))
    return convs, bns, gemms


def _dequantized_conv(inputs: list[np.ndarray | None]) -> tuple[np.ndarray, np.ndarray | None]:
    """(W, b) in float32 of a QLinearConv (x, x_scale, x_zero, w, w_scale, w_zero, y_scale, y_zero[, B]): the int8
    weights times their per-channel scale; the int32 bias is quantized with scale x_scale * w_scale (ONNX spec)."""
    x_scale, w, w_scale, w_zero = inputs[1], inputs[3], inputs[4], inputs[5]
    bias = inputs[8] if len(inputs) > 8 else None
    w_scale = np.asarray(w_scale, np.float32).reshape(-1)
    w_zero = np.asarray(w_zero, np.float32).reshape(-1)
    shape = (-1,) + (1,) * (w.ndim - 1)
    weight = (w.astype(np.float32) - w_zero.reshape(shape)) * w_scale.reshape(shape)  # (out, in, k, k)
    if bias is None:
        return weight, None
    return weight, (bias.astype(np.float64) * float(x_scale) * w_scale).astype(np.float32)


def _tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(a, dtype=np.float32, copy=True))  # onnx's arrays are read-only views


def _next_bn(modules: list[nn.Module], i: int) -> nn.BatchNorm2d | None:
    """The BatchNorm that follows modules[i] (a Conv2d) directly or after one max-pool (where
    ferkit.models.fold folds it into the conv), if any."""
    j = i + 2 if i + 1 < len(modules) and isinstance(modules[i + 1], nn.MaxPool2d) else i + 1
    return modules[j] if j < len(modules) and isinstance(modules[j], nn.BatchNorm2d) else None


@torch.no_grad()
def model_from_onnx(path: str | Path) -> tuple[nn.Module, dict]:
    """(torch model in eval mode, checkpoint-like dict: model, model_args, config, contract) from a ferkit .onnx."""
    from ferkit.runtime import Recognizer

    path = Path(path)
    meta = Recognizer.from_file(path).metadata
    name = meta.get("model_name")
    recipe = json.loads(meta.get("recipe", "{}"))
    if not name:
        raise OnnxRebuildError(f"{path}: its metadata names no model_name to rebuild")
    model = create_model_from_metadata(name, meta).eval()
    convs, bns, gemms = _graph_weights(path)
    if FOLDING_KEY in meta:  # an inference-folded graph (ferkit.models.fold): back to the model's own weights
        convs, gemms = unfold_graph_weights(convs, gemms, json.loads(meta[FOLDING_KEY]))
    modules = [m for m in model.modules() if not list(m.children())]
    torch_convs = [i for i, m in enumerate(modules) if isinstance(m, nn.Conv2d)]
    if len(torch_convs) != len(convs):
        raise OnnxRebuildError(f"{path}: {len(convs)} convolutions in the graph, {len(torch_convs)} in {name}")
    folded: set[int] = set()
    for (w, b), i in zip(convs, torch_convs, strict=True):
        conv, bn = modules[i], _next_bn(modules, i)
        if tuple(conv.weight.shape) != w.shape:
            raise OnnxRebuildError(f"{path}: a conv of shape {w.shape} where {name} has {tuple(conv.weight.shape)}")
        conv.weight.copy_(_tensor(w))
        if conv.bias is not None:
            conv.bias.copy_(_tensor(b))
        elif bn is not None and b is not None:  # BN(conv(x)) was folded into conv's weight and bias
            bn.weight.fill_(1.0)
            bn.bias.copy_(_tensor(b))
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)  # (x - 0) / sqrt(var + eps) = x
            folded.add(id(bn))
    kept = [m for m in modules if isinstance(m, nn.BatchNorm2d) and id(m) not in folded]
    if len(kept) != len(bns):
        raise OnnxRebuildError(f"{path}: {len(bns)} BatchNorm nodes in the graph, {len(kept)} unfolded in {name}")
    for m, (scale, bias, mean, var, _eps) in zip(kept, bns, strict=True):
        m.weight.copy_(_tensor(scale))
        m.bias.copy_(_tensor(bias))
        m.running_mean.copy_(_tensor(mean))
        m.running_var.copy_(_tensor(var))
    linears = [m for m in modules if isinstance(m, nn.Linear)]
    if len(linears) != len(gemms):
        raise OnnxRebuildError(f"{path}: {len(gemms)} dense layers in the graph, {len(linears)} in {name}")
    for lin, (w, b) in zip(linears, gemms, strict=True):
        lin.weight.copy_(_tensor(np.ascontiguousarray(w)))
        if lin.bias is not None and b is not None:
            lin.bias.copy_(_tensor(b))
    ckpt = {"model": name, "model_args": recipe.get("model_args", {}), "config": recipe, "onnx_metadata": meta}
    return model, ckpt


def check_rebuild(
    model: nn.Module, path: Path, faces: np.ndarray, tol: float = 1e-4, min_agreement: float | None = None
) -> float:
    """max |p_torch - p_onnx| on faces; raises OnnxRebuildError past tol (nothing is exported from a bad rebuild).
    min_agreement (an int8 file, whose float rebuild cannot match its integer arithmetic to 1e-4): instead, the
    top-1 agreement on faces must reach it."""
    from ferkit.metrics import softmax
    from ferkit.models.preprocess import to_input
    from ferkit.runtime import Recognizer

    want = softmax(Recognizer.from_file(path).logits(faces).astype(np.float64))
    size = model.pretrained_cfg["input_size"][-1]
    with torch.no_grad():
        x = to_input(torch.from_numpy(faces).unsqueeze(1), model.pretrained_cfg, channels_last=False)
        o = (x.shape[-1] - size) // 2
        got = softmax(model.eval()(x[:, :, o : o + size, o : o + size]).double().numpy())
    diff = float(np.abs(got - want).max())
    if min_agreement is not None:
        agree = float((got.argmax(1) == want.argmax(1)).mean())
        if not agree >= min_agreement:
            raise OnnxRebuildError(
                f"{path}: the rebuilt torch model picks the int8 file's top expression on only {agree:.2%} of "
                f"{len(faces)} faces (< {min_agreement:.0%})"
            )
        return diff
    if not diff < tol:
        raise OnnxRebuildError(f"{path}: the rebuilt torch model differs from the ONNX file by {diff:.1e} (>= {tol})")
    return diff
