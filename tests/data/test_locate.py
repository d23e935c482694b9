import os
import sys
import types

import pytest

from ferkit.data import locate
from ferkit.data import source as source_mod
from ferkit.errors import DataNotFoundError, FerkitError


def test_explicit_path_env_and_folder(tmp_path, fer_csv, monkeypatch):
    assert locate(fer_csv) == fer_csv
    assert locate(fer_csv.parent) == fer_csv  # a folder holding fer2013.csv
    monkeypatch.setenv("FERKIT_DATA", str(fer_csv.parent))
    assert locate() == fer_csv


def test_missing_data_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr(source_mod, "default_locations", lambda: [tmp_path / "nowhere"])
    with pytest.raises(DataNotFoundError) as err:
        locate()
    msg = str(err.value)
    assert "kaggle competitions download -c challenges-in-representation-learning" in msg
    assert "ferkit data download" in msg and str(tmp_path / "nowhere") in msg


def test_default_locations_start_at_shared_beside_the_project():
    first = source_mod.default_locations()[0]
    assert first.parts[-3:] == ("shared", "datasets", "fer2013")


def test_download_with_mocked_kaggle(tmp_path, monkeypatch, fer_csv):
    import zipfile

    calls = {}

    class FakeApi:
        def authenticate(self):
            calls["auth"] = True

        def competition_download_files(self, competition, path, quiet):
            calls["competition"] = competition
            with zipfile.ZipFile(f"{path}/{competition}.zip", "w") as z:
                z.write(fer_csv, "fer2013.csv")

    ext = types.ModuleType("kaggle.api.kaggle_api_extended")
    ext.KaggleApi = FakeApi
    for name, mod in {
        "kaggle": types.ModuleType("kaggle"),
        "kaggle.api": types.ModuleType("kaggle.api"),
        "kaggle.api.kaggle_api_extended": ext,
    }.items():
        monkeypatch.setitem(sys.modules, name, mod)
    from ferkit.data.download import download

    got = download(tmp_path / "dl")
    assert got == tmp_path / "dl" / "fer2013.csv" and got.read_bytes() == fer_csv.read_bytes()
    assert calls == {"auth": True, "competition": source_mod.KAGGLE_COMPETITION}
    # Without --dest it lands where locate() looks, also when $FERKIT_CACHE moves the cache (it does in tests).
    default = download()
    assert default.parent in source_mod.default_locations() and str(default).startswith(os.environ["FERKIT_CACHE"])

    class NoCreds(FakeApi):
        def authenticate(self):
            raise OSError("Could not find kaggle.json")

    ext.KaggleApi = NoCreds
    with pytest.raises(FerkitError, match=r"kaggle.json"):
        download(tmp_path / "dl2")


def test_download_without_kaggle_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "kaggle", None)  # import fails
    from ferkit.data.download import download

    with pytest.raises(FerkitError, match=r"pip install 'ferkit\[kaggle\]'"):
        download(tmp_path)


def test_run_data_refuses_a_recorded_path_that_now_holds_another_file(fer_csv, tmp_path):
    from ferkit.data.source import data_identity, run_data
    from ferkit.errors import DataError

    ckpt = {"config": {"data": str(fer_csv)}, "summary": {"data": data_identity(fer_csv)}}
    assert run_data(None, ckpt) == fer_csv  # the file it trained on, still there
    other = tmp_path / "other.csv"
    other.write_text(fer_csv.read_text())
    assert run_data(str(other), ckpt) == other  # --data always wins
    fer_csv.write_text("\n".join(fer_csv.read_text().splitlines()[:10]) + "\n")  # a smaller file at that path
    with pytest.raises(DataError, match="not the file this run trained on.*--data"):
        run_data(None, ckpt)
    assert run_data(None, {"config": {"data": str(fer_csv)}}) == fer_csv  # older runs recorded no sha256
