"""Model registry and architectures (torch layer)."""

from ferkit.models import seed_vgg as _seed_vgg  # noqa: F401  (registers its models)
from ferkit.models.registry import create_model, list_models, register_model


def count_parameters(model) -> dict[str, int]:
    """Trainable parameters and BN running statistics (Keras counts both in its total)."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    stats = sum(b.numel() for n, b in model.named_buffers() if n.endswith(("running_mean", "running_var")))
    return {"trainable": trainable, "bn_statistics": stats, "total": trainable + stats}


__all__ = ["count_parameters", "create_model", "list_models", "register_model"]
