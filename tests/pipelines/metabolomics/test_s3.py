"""Annotation of an imzML in s3:// (real S3 server, Lithops minio storage) equals the local annotation."""
from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from cloudbutton.core import storage
from cloudbutton.core.cli import main
from cloudbutton.pipelines.metabolomics.formula_pool import formula_pool
from cloudbutton.pipelines.metabolomics.synthetic import make_dataset


@pytest.fixture(scope="module")
def small_set(tmp_path_factory: pytest.TempPathFactory):
    return make_dataset(str(tmp_path_factory.mktemp("msi")), formula_pool(), seed=4, shape=(16, 16),
                        n_planted=8, n_wrong=2, n_unknown=10, n_distractors=40, name="small")


def _run_record(name: str) -> bool:
    """Files describing the run (KPIs, timeline, report with timings, hidden bookkeeping), not the science."""
    return name.startswith(("kpi.", ".")) or name == "report.html"


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not _run_record(p.name)}


@pytest.mark.parametrize("executor", ["threads", "lithops"])
def test_annotation_of_an_s3_imzml_matches_local(s3_server, small_set, tmp_path, executor):
    prefix = f"msi-{uuid.uuid4().hex[:8]}/"
    imzml = s3_server.upload(small_set.imzml, prefix + "in/small.imzML")
    s3_server.upload(small_set.imzml[: -len(".imzML")] + ".ibd", prefix + "in/small.ibd")
    db = s3_server.upload(small_set.db, prefix + "in/" + Path(small_set.db).name)  # the name names the database
    common = ["--workers", "2", "--quiet", "--no-centroid-cache", "--partitions", "3"]
    assert main(["metabolomics", "annotate", small_set.imzml, "--db", small_set.db,
                 "--out", str(tmp_path / "local"), *common]) == 0
    try:
        assert main(["metabolomics", "annotate", imzml, "--db", db, "--out", s3_server.uri(prefix + "out"),
                     "--executor", executor, "--lithops-config", str(s3_server.config_file), *common]) == 0
    finally:
        storage.configure(None)
    local = _files(tmp_path / "local")
    remote = {key[len(prefix + "out/"):]: None for key in s3_server.keys(prefix + "out/")}
    assert "annotations.csv" in local and set(local) == {k for k in remote if not _run_record(k)}
    for name, data in local.items():
        assert s3_server.download(prefix + "out/" + name, tmp_path / "remote.bin").read_bytes() == data, name
    kpi = json.loads(s3_server.download(prefix + "out/kpi.json", tmp_path / "kpi.json").read_text())
    ibd = Path(small_set.imzml[: -len(".imzML")] + ".ibd").stat().st_size
    reads = [t for t in kpi["tasks"] if t["stage"] == "dataset"]
    assert len(reads) == 3 and all(t["requests"]["get"] >= 1 for t in reads)
    assert all(t["bytes_read"] < 0.6 * ibd for t in reads)  # each read task fetched its spectra, not the .ibd


def test_python_api_plans_an_s3_imzml_with_the_given_lithops_config(s3_server, small_set, tmp_path):
    """annotate() reads the imzML header while planning: the lithops_config must apply before that."""
    from cloudbutton.pipelines.metabolomics import annotate

    prefix = f"msi-api-{uuid.uuid4().hex[:8]}/"
    imzml = s3_server.upload(small_set.imzml, prefix + "small.imzML")
    s3_server.upload(small_set.imzml[: -len(".imzML")] + ".ibd", prefix + "small.ibd")
    storage.configure(None)  # nothing configured beforehand, as in a fresh notebook
    try:
        result = annotate(imzml, small_set.db, str(tmp_path / "api"), workers=2, quiet=True,
                          centroid_cache=None, lithops_config=str(s3_server.config_file))
    finally:
        storage.configure(None)
    local = main(["metabolomics", "annotate", small_set.imzml, "--db", small_set.db, "--out",
                  str(tmp_path / "local"), "--workers", "2", "--quiet", "--no-centroid-cache"])
    assert local == 0 and result.kpi["run"]["ok"]
    assert (tmp_path / "api" / "annotations.csv").read_bytes() == (tmp_path / "local" / "annotations.csv").read_bytes()
