"""FER2013 data: readers for every layout, a uint8 cache, splits and quality facts. NumPy only."""

from ferkit.data.csv_reader import CSV_LAYOUTS, read_csv
from ferkit.data.dataset import ALL_USAGES, IMAGE_SIZE, USAGES, FERDataset, SkippedRow
from ferkit.data.ferplus import (
    FERPLUS_COLUMNS,
    FERPLUS_EMOTIONS,
    FerPlusVotes,
    fer2013_distribution,
    ferplus_facts,
    ferplus_labelled,
    ferplus_majority,
    ferplus_targets,
    join_ferplus,
    load_with_ferplus,
    locate_ferplus,
    mixed_targets,
    read_ferplus,
    read_ferplus_folder,
    with_votes,
)
from ferkit.data.folder_reader import read_folder
from ferkit.data.quality import (
    DatasetInfo,
    QualityReport,
    dataset_info,
    duplicate_groups,
    near_blank_mask,
    quality_report,
)
from ferkit.data.source import HOW_TO_GET, LAYOUTS, load_fer2013, locate
from ferkit.data.splits import SPLITS, Splits, holdout_without_shared_images, kfold_assignment, make_splits

__all__ = [
    "ALL_USAGES",
    "CSV_LAYOUTS",
    "FERPLUS_COLUMNS",
    "FERPLUS_EMOTIONS",
    "HOW_TO_GET",
    "IMAGE_SIZE",
    "LAYOUTS",
    "SPLITS",
    "USAGES",
    "DatasetInfo",
    "FERDataset",
    "FerPlusVotes",
    "QualityReport",
    "SkippedRow",
    "Splits",
    "dataset_info",
    "duplicate_groups",
    "fer2013_distribution",
    "ferplus_facts",
    "ferplus_labelled",
    "ferplus_majority",
    "ferplus_targets",
    "holdout_without_shared_images",
    "join_ferplus",
    "kfold_assignment",
    "load_fer2013",
    "load_with_ferplus",
    "locate",
    "locate_ferplus",
    "make_splits",
    "mixed_targets",
    "near_blank_mask",
    "quality_report",
    "read_csv",
    "read_ferplus",
    "read_ferplus_folder",
    "read_folder",
    "with_votes",
]
