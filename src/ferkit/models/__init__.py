"""Model registry and architectures (torch layer)."""

from ferkit.models import fast_fer as _fast_fer  # noqa: F401  (registers its models)
from ferkit.models import fer_nets as _fer_nets  # noqa: F401
from ferkit.models import seed_vgg as _seed_vgg  # noqa: F401
from ferkit.models.registry import create_model, create_model_from_metadata, list_models, register_model


def count_parameters(model) -> dict[str, int]:
    """Trainable parameters and BN running statistics (Keras counts both in its total)."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    stats = sum(b.numel() for n, b in model.named_buffers() if n.endswith(("running_mean", "running_var")))
    return {"trainable": trainable, "bn_statistics": stats, "total": trainable + stats}


__all__ = [
    "count_flops",
    "count_macs",
    "count_parameters",
    "create_model",
    "create_model_from_metadata",
    "describe_models",
    "list_models",
    "register_model",
    "training_step_flops",
]


def training_step_flops(macs: int) -> int:
    """FLOPs of one training step per image: forward (2 x MACs), and backward's input and weight gradients (2 x
    MACs each), so 6 x MACs; normalisation and activations are not counted (they are what the ratio exposes)."""
    return 6 * macs


def count_macs(model, input_size: tuple[int, int, int] | None = None) -> int:
    """Multiply-accumulates of one forward pass (convolutions and linear layers), counted with hooks."""
    import torch

    total = 0

    def hook(module, inputs, output):
        nonlocal total
        if isinstance(module, torch.nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
            total += output.numel() * k
        elif isinstance(module, torch.nn.Linear):
            total += output.numel() * module.in_features

    handles = [
        m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))
    ]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        device = next(model.parameters(), torch.empty(0)).device  # a model on a GPU is counted there
        model(torch.zeros(1, *(input_size or model.pretrained_cfg["input_size"]), device=device))
    model.train(was_training)
    for h in handles:
        h.remove()
    return total


count_flops = count_macs  # the old name: it always counted multiply-accumulates (FLOPs = 2 x MACs)


def describe_models() -> list[dict]:
    """Every registered model: trainable parameters, input size and the multiply-accumulates of one face."""
    rows = []
    for name in list_models():
        model = create_model(name)
        macs = count_macs(model)
        size = list(model.pretrained_cfg["input_size"])
        rows.append(
            {
                "model": name,
                "parameters": count_parameters(model)["trainable"],
                "input_size": size,
                "macs": macs,
                "flops": 2 * macs,
            }
        )
    return rows
