"""Fixtures of the metabolomics tests: shared real data, one centroid cache per session, synthetic sets."""
from __future__ import annotations

from pathlib import Path

import pytest

from cloudbutton.pipelines.metabolomics.formula_pool import formula_pool
from cloudbutton.pipelines.metabolomics.formulas import load_database
from cloudbutton.pipelines.metabolomics.synthetic import SyntheticDataset, make_dataset

PC_34_1 = "C42H82NO8P"  # PC(34:1); its +K ion is the spheroid's base peak 798.5432


@pytest.fixture(scope="session")
def centroid_cache(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A centroid cache shared by every run of the session (tests never touch the user's cache).

    It is ``<tmp>/centroids``, so ``CLOUDBUTTON_CACHE=<tmp>`` points the notebook's default at it.
    """
    path = tmp_path_factory.mktemp("cache") / "centroids"
    path.mkdir()
    return str(path)


@pytest.fixture(scope="session")
def hmdb(shared_data: Path) -> list[str]:
    return load_database(str(shared_data / "metabolomics" / "moldbs" / "hmdb.csv"))


@pytest.fixture(scope="session")
def spheroid(shared_data: Path) -> Path:
    return shared_data / "metabolomics" / "spheroid_tiny" / "Untreated_3_434_tiny.imzML"


@pytest.fixture(scope="session")
def spheroid_db(hmdb: list[str], tmp_path_factory: pytest.TempPathFactory) -> str:
    """PC(34:1) plus every 100th HMDB formula (117 formulas: enough decoys, fast centroids)."""
    formulas = [PC_34_1, *hmdb[::100]]
    path = tmp_path_factory.mktemp("db") / "hmdb_sample_plus_pc.csv"
    path.write_text("sf\n" + "\n".join(formulas) + "\n")
    return str(path)


@pytest.fixture(scope="session")
def synthetic_sets(tmp_path_factory: pytest.TempPathFactory) -> list[SyntheticDataset]:
    """Three generator seeds, 40×40 pixels, 45 planted + 6 wrong-pattern ions, 300 distractors,
    formulas from the generated pool (no outside data)."""
    out = tmp_path_factory.mktemp("synthetic")
    pool = formula_pool()
    return [make_dataset(str(out), pool, seed=seed, n_distractors=300, name=f"seed{seed}") for seed in (0, 1, 2)]
