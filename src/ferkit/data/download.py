"""`ferkit data download`: fetch FER2013 from Kaggle through the official client.

Run only when a user asks for it; nothing in ferkit downloads data on its own.
"""

from __future__ import annotations

import tarfile
import zipfile
from pathlib import Path

from ferkit.data.source import KAGGLE_COMPETITION
from ferkit.errors import FerkitError, require


def _kaggle_api():  # -> kaggle.api.kaggle_api_extended.KaggleApi
    require("kaggle", "kaggle")
    from kaggle.api.kaggle_api_extended import KaggleApi

    api = KaggleApi()
    try:
        api.authenticate()
    except Exception as e:  # the client raises bare OSError/ValueError on missing credentials
        raise FerkitError(
            f"Kaggle refused the credentials ({e}). Put your API token in ~/.kaggle/kaggle.json "
            f"and accept the rules of https://www.kaggle.com/c/{KAGGLE_COMPETITION}"
        ) from e
    return api


def download(dest: str | Path | None = None) -> Path:
    """Download the competition files into dest (default: the cache folder's fer2013/, one of the places
    `locate()` searches), unpack them, and return the fer2013.csv found."""
    from ferkit.data.cache import cache_dir

    dest = Path(dest) if dest else cache_dir() / "fer2013"
    dest.mkdir(parents=True, exist_ok=True)
    api = _kaggle_api()
    api.competition_download_files(KAGGLE_COMPETITION, path=str(dest), quiet=False)
    for archive in sorted(dest.glob("*.zip")):
        with zipfile.ZipFile(archive) as z:
            z.extractall(dest)
    for archive in sorted(dest.glob("*.tar.gz")):
        with tarfile.open(archive) as t:
            t.extractall(dest, filter="data")
    for candidate in ("fer2013.csv", "fer2013/fer2013.csv", "icml_face_data.csv", "train.csv"):
        if (dest / candidate).is_file():
            return dest / candidate
    raise FerkitError(f"the Kaggle download in {dest} holds no fer2013.csv, icml_face_data.csv or train.csv")
