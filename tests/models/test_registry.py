import pytest
import torch

from ferkit.models import count_parameters, create_model, list_models


def test_seed_vgg_matches_keras_parameter_count():
    counts = count_parameters(create_model("seed_vgg"))
    assert counts == {"trainable": 5_098_951, "bn_statistics": 3_840, "total": 5_102_791}


def test_seed_vgg_keras_defaults():
    m = create_model("seed_vgg")
    bn = next(x for x in m.modules() if isinstance(x, torch.nn.BatchNorm2d))
    assert bn.momentum == pytest.approx(0.01) and bn.eps == pytest.approx(1e-3)
    conv = next(x for x in m.modules() if isinstance(x, torch.nn.Conv2d))
    assert torch.count_nonzero(conv.bias) == 0
    bound = (6 / (9 * 1 + 9 * 64)) ** 0.5  # Glorot uniform for a 3x3 conv 1 -> 64
    assert conv.weight.abs().max() <= bound and conv.weight.abs().max() > 0.8 * bound


@pytest.mark.parametrize("name", list_models())
def test_forward_shape_and_contract(name):
    m = create_model(name).eval()
    c, h, w = m.pretrained_cfg["input_size"]
    assert m(torch.rand(3, c, h, w)).shape == (3, 7)
    assert len(m.pretrained_cfg["labels"]) == 7 and m.model_name == name


@pytest.mark.parametrize("name", list_models())
def test_every_parameter_gets_a_gradient(name):
    torch.manual_seed(0)
    m = create_model(name).train()
    loss = torch.nn.functional.cross_entropy(m(torch.rand(4, 1, 48, 48)), torch.arange(4))
    loss.backward()
    trained = [(n, p) for n, p in m.named_parameters() if p.requires_grad]
    missing = [n for n, p in trained if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing
    frozen = [n for n, p in m.named_parameters() if not p.requires_grad]
    assert frozen == (["whiten.weight"] if name.startswith("fast_fer") else [])  # set from data, never trained


def test_residual_group_adds_its_input_back():
    """ResGroup (fast_fer_res): with the last convolution's branch at zero, the group is act(x0), x0 the pooled
    first stage: the skip carries x0 through, and the output is at half the input's resolution."""
    from ferkit.models.fast_fer import ResGroup

    torch.manual_seed(0)
    g = ResGroup(4, 8).eval()
    torch.nn.init.zeros_(g.conv3.weight)  # norm3 in eval mode with fresh statistics maps 0 to 0
    x = torch.randn(2, 4, 10, 10)
    x0 = g.act(g.norm1(g.pool(g.conv1(x))))  # (2, 8, 5, 5)
    with torch.no_grad():
        torch.testing.assert_close(g(x), g.act(x0))
    assert g(x).shape == (2, 8, 5, 5)


def test_fast_fer_res_is_deeper_at_a_lower_cost():
    from ferkit.models import count_macs

    res, plain = create_model("fast_fer_res", crop=44), create_model("fast_fer", crop=44)
    convs = [sum(isinstance(x, torch.nn.Conv2d) for x in m.modules()) for m in (res, plain)]
    assert convs == [10, 7]  # the whitening conv and three groups of three, against three of two
    assert count_macs(res) == pytest.approx(298.9e6, rel=1e-3) and count_macs(res) < count_macs(plain)
    assert count_parameters(res)["trainable"] == 4_182_546


def test_unknown_group_names_the_choices():
    with pytest.raises(ValueError, match="expected one of plain, res"):
        create_model("fast_fer", group="dense")


def test_unknown_model_lists_the_registry():
    with pytest.raises(ValueError, match="seed_vgg"):
        create_model("resnet9000")


def test_issue6_models_budgets():
    from ferkit.models import count_flops

    assert count_parameters(create_model("vgg_fer"))["trainable"] <= 5_000_000
    assert count_parameters(create_model("mobile_fer"))["trainable"] <= 1_000_000
    assert count_flops(create_model("seed_vgg")) == pytest.approx(331.8e6, rel=1e-3)


@pytest.mark.parametrize("tta", [False, "flip", "tencrop"])
def test_cropped_models_evaluate_and_export_on_48px_faces(tta, tmp_path):
    import json

    import numpy as np

    from ferkit.export.onnx import contract, export_onnx, torch_probabilities
    from ferkit.models.predict import predict_logits

    torch.manual_seed(0)
    m = create_model("mobile_fer").eval()
    faces = np.random.default_rng(0).integers(0, 256, (6, 48, 48), dtype=np.uint8)
    logits = predict_logits(m, faces, tta=tta, channels_last=False)
    assert logits.shape == (6, 7) and np.isfinite(logits).all()
    if tta is False:  # the export crops the centre inside the graph, exactly as evaluation does
        np.testing.assert_allclose(
            torch_probabilities(m, faces), np.exp(logits) / np.exp(logits).sum(1, keepdims=True), atol=1e-5
        )
        export_onnx(m, tmp_path / "m.onnx", {"ferkit_contract": json.dumps(contract(m))}, faces)


def test_cli_models_lists_every_model_with_its_size(capsys):
    import json

    from ferkit.cli import main
    from ferkit.models import count_flops, list_models

    assert main(["models", "--json"]) == 0
    rows = {r["model"]: r for r in json.loads(capsys.readouterr().out)}
    assert sorted(rows) == list_models()
    assert rows["seed_vgg"]["parameters"] == 5_098_951 and rows["seed_vgg"]["input_size"] == [1, 48, 48]
    assert rows["vgg_fer"]["macs"] == count_flops(create_model("vgg_fer"))
    assert all(r["flops"] == 2 * r["macs"] > 0 for r in rows.values())
    assert main(["models"]) == 0 and "mobile_fer" in capsys.readouterr().out


def test_flop_accounting_on_a_model_of_known_count():
    from ferkit.models import count_macs, training_step_flops

    class OneConv(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.pretrained_cfg = {"input_size": (1, 10, 10)}
            self.conv = torch.nn.Conv2d(1, 4, 3, padding=1, bias=False)  # 10*10*4 outputs x 9 MACs
            self.fc = torch.nn.Linear(400, 7)  # 7 x 400 MACs

        def forward(self, x):
            return self.fc(self.conv(x).flatten(1))

    macs = count_macs(OneConv())
    assert macs == 10 * 10 * 4 * 9 + 7 * 400
    assert training_step_flops(macs) == 6 * macs


def test_count_macs_runs_where_the_model_is():
    """`ferkit predictions --device cuda` counts a model already on the GPU (here: torch's meta device)."""
    from ferkit.models import count_macs, create_model

    model = create_model("fast_fer_u")
    assert count_macs(model.to("meta")) == count_macs(create_model("fast_fer_u")) > 0
