"""Recipes: shipped in the package and chosen by name, validated by type with clear errors (pydantic)."""

from __future__ import annotations

import pytest

from ferkit.cli import main
from ferkit.training.config import ConfigError, load_config, recipe_names


def test_recipes_are_shipped_and_chosen_by_name(tmp_path):
    assert {"best", "fast", "mobile", "qat", "qat_student", "seed", "student"} <= set(recipe_names())
    assert load_config("best").model == "vgg_fer" and load_config("fast.yaml").model == "fast_fer_s"
    assert load_config("student").model == "fast_fer_t" and load_config("student").phases[0].epochs == 60
    own = tmp_path / "mine.yaml"
    own.write_text("model: mobile_fer\nlr: 0.01\n")
    assert load_config(own).lr == 0.01  # a path still works


@pytest.mark.parametrize(
    ("override", "value"),
    [("lr=1e-3", 1e-3), ("batch_size=64", 64), ("phases.0.epochs=3", 3), ("phases.0.augment.hflip=false", False)],
)
def test_overrides_are_typed(override, value):
    cfg = load_config("best", [override])
    key = override.split("=")[0].split(".")
    node = cfg
    for k in key:
        node = node[int(k)] if k.isdigit() else getattr(node, k)
    assert node == value and type(node) is type(value)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("batch_size=abc", "batch_size: Input should be a valid integer"),
        ("phases.0.epochs=abc", "phases.0.epochs: Input should be a valid integer"),
        ("modle=x", "modle: unknown key"),
        ("phases.0.augment.zoom=big", "phases.0.augment.zoom: Input should be a valid number"),
        ("lr", "is not key=value"),
    ],
)
def test_bad_values_are_refused_naming_the_field(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("best", [override])


def test_unknown_recipe_and_cli_errors(capsys):
    with pytest.raises(ConfigError, match="no recipe 'nope'.*best"):
        load_config("nope")
    assert main(["train", "--config", "best", "--set", "modle=x", "--limit", "8"]) == 2
    assert "modle: unknown key" in capsys.readouterr().err


def test_train_without_torch_names_the_extra():
    from conftest import run_blocked

    r = run_blocked(
        """
        from ferkit.cli import main
        print(main(["train", "--config", "best", "--limit", "8"]))
        """
    )
    assert r.stdout.strip() == "2", r.stderr[-1500:]
    assert "pip install 'ferkit[train]'" in r.stderr and "Traceback" not in r.stderr
