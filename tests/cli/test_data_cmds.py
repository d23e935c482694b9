import json

import pytest

from ferkit.cli import build_parser, main


def test_data_info_table_and_json(fer_csv, capsys):
    assert main(["data", "info", "--data", str(fer_csv)]) == 0
    out = capsys.readouterr().out
    assert "Training" in out and "PublicTest" in out and "near-blank" in out
    assert main(["data", "info", "--data", str(fer_csv), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["rows"] == 35 and info["layout"] == "fer2013-csv"
    assert sum(sum(v) for v in info["counts"].values()) == 35


def test_data_plot_writes_pngs(fer_csv, tmp_path, capsys):
    assert main(["data", "plot", "--data", str(fer_csv), "--out", str(tmp_path / "figs"), "--per-class", "2"]) == 0
    for name in ("class_histogram.png", "samples.png"):
        png = tmp_path / "figs" / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_missing_data_is_a_clean_error(tmp_path, capsys):
    assert main(["data", "info", "--data", str(tmp_path / "none")]) == 2
    assert "kaggle competitions download" in capsys.readouterr().err


def _subcommands(parser, prefix=()):
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name)
                yield from _subcommands(sub, (*prefix, name))


@pytest.mark.parametrize("words", list(_subcommands(build_parser())))
def test_every_command_has_help(words, capsys):
    with pytest.raises(SystemExit) as e:
        main([*words, "--help"])
    assert e.value.code == 0 and "usage: ferkit" in capsys.readouterr().out
