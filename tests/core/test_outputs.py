"""No data loss: an output never replaces an input or a file the tool did not write."""
from __future__ import annotations

import hashlib
import os
from dataclasses import replace
from pathlib import Path

import pytest

from cloudbutton.core import InputError, storage
from cloudbutton.core.cli import main
from cloudbutton.core.outputs import MANIFEST, check


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CLOUDBUTTON_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _state(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with the SHA-256 of its content."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run the CLI, expect exit 2 and a one-line error; return that line."""
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cloudbutton: error: ")
    return lines[0]


def test_check_rules(tmp_path: Path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "in.txt").write_text("x")
    with pytest.raises(InputError, match="is an input"):
        check(str(data / "in.txt"), [str(data / "in.txt")], is_dir=False)
    with pytest.raises(InputError, match="contains an input"):
        check(str(tmp_path), [str(data / "in.txt")], is_dir=True, overwrite=True)
    with pytest.raises(InputError, match="is a folder"):
        check(str(data), [], is_dir=False)
    with pytest.raises(InputError, match="not empty"):
        check(str(data), [], is_dir=True)
    check(str(data), [], is_dir=True, overwrite=True)
    check(str(tmp_path / "new"), [str(data / "in.txt")], is_dir=True)
    (data / "old.vcf").write_text("older output")
    check(str(data / "old.vcf"), [str(data / "in.txt")], is_dir=False)  # a file may replace a file


def test_atomic_folder_output_moves_in_only_its_own_files(tmp_path: Path):
    target = tmp_path / "results"
    (target / "images").mkdir(parents=True)
    (target / "notes.txt").write_text("mine")
    (target / "images" / "keep.png").write_text("mine too")
    (target / "a.csv").write_text("old a")
    with storage.atomic_output(str(target), directory=True) as tmp:
        (Path(tmp) / "a.csv").write_text("new a")
        (Path(tmp) / "images").mkdir()
        (Path(tmp) / "images" / "ion.png").write_text("png")
    assert _state(target).keys() == {"a.csv", "notes.txt", "images/keep.png", "images/ion.png"}
    assert (target / "a.csv").read_text() == "new a" and (target / "notes.txt").read_text() == "mine"


@pytest.fixture(scope="module")
def msi(tmp_path_factory: pytest.TempPathFactory):
    """A 12 x 12 pixel synthetic imzML with its database, in a folder of its own."""
    from cloudbutton.pipelines.metabolomics.formula_pool import formula_pool
    from cloudbutton.pipelines.metabolomics.synthetic import make_dataset

    return make_dataset(str(tmp_path_factory.mktemp("msi")), formula_pool(), seed=0, shape=(12, 12), n_planted=8,
                        n_wrong=1, n_distractors=30, n_unknown=5, background_peaks=20, name="tiny")


def test_metabolomics_output_safety(msi, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    data = Path(msi.imzml).parent
    inputs = _state(data)
    annotate = ["metabolomics", "annotate", msi.imzml, "--db", msi.db, "--quiet"]
    assert "contains an input" in _refused([*annotate, "--out", str(data)], capsys)  # the data loss
    assert "is an input" in _refused([*annotate, "--out", msi.imzml], capsys)
    assert _state(data) == inputs

    out = tmp_path / "results"
    out.mkdir()
    (out / "notes.txt").write_text("the user's own notes")
    assert "not empty" in _refused([*annotate, "--out", str(out)], capsys)
    assert _state(out) == {"notes.txt": hashlib.sha256(b"the user's own notes").hexdigest()}

    assert main([*annotate, "--out", str(out), "--overwrite"]) == 0
    written = _state(out)
    assert (out / "notes.txt").read_text() == "the user's own notes"
    assert {"annotations.csv", "kpi.json", MANIFEST} <= written.keys()
    assert "not empty" in _refused([*annotate, "--out", str(out)], capsys)
    (out / "annotations.csv").write_text("stale")
    assert main([*annotate, "--out", str(out), "--overwrite"]) == 0
    assert _state(out)["annotations.csv"] == written["annotations.csv"]  # the tool's own file replaced
    assert (out / "notes.txt").read_text() == "the user's own notes" and _state(data) == inputs

    fresh = tmp_path / "fresh"
    assert main([*annotate, "--out", str(fresh)]) == 0
    assert "earlier run" in _refused([*annotate, "--out", str(fresh)], capsys)


def test_metabolomics_failed_run_leaves_its_folder_usable(msi, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """A failed run writes kpi.json into a new output folder; running again there is no 'non-empty' refusal."""
    out = tmp_path / "results"
    argv = ["metabolomics", "annotate", msi.imzml, "--db", msi.db, "--quiet", "--out", str(out)]
    assert main([*argv, "--timeout", "0.001", "--retries", "0"]) != 0
    assert "timed out" in capsys.readouterr().err
    assert sorted(os.listdir(out)) == [MANIFEST, "kpi.json", "kpi.timeline.png", "kpi.trace.json", "report.html"]
    assert main(argv) == 0 and (out / "annotations.csv").exists()


@pytest.fixture(scope="module")
def bam(tmp_path_factory: pytest.TempPathFactory):
    from cloudbutton.pipelines.genomics.simulate import PRESETS, make_sample

    spec = replace(PRESETS["30x"], length=30_000, depth=20.0, seed=7)
    return make_sample(str(tmp_path_factory.mktemp("bam")), spec)


def test_genomics_output_safety(bam, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    data = Path(bam.bam).parent
    inputs = _state(data)
    call = ["genomics", "call", bam.bam, "--reference", bam.reference, "--quiet"]
    _refused([*call, "--out", bam.bam], capsys)
    _refused([*call, "--out", str(data)], capsys)
    assert _state(data) == inputs
    folder = tmp_path / "calls.vcf.gz"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    _refused([*call, "--out", str(folder)], capsys)  # an existing folder is never replaced by a file
    assert (folder / "notes.txt").read_text() == "mine"

    out = tmp_path / "out" / "calls.vcf.gz"
    out.parent.mkdir()
    (out.parent / "notes.txt").write_text("mine")
    assert main([*call, "--out", str(out)]) == 0
    first = out.read_bytes()
    assert main([*call, "--out", str(out)]) == 0  # an older output file of the same name is replaced
    assert out.read_bytes() == first and (out.parent / "notes.txt").read_text() == "mine"
    assert _state(data) == inputs


@pytest.fixture(scope="module")
def tiles(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    from cloudbutton.pipelines.geospatial.synthetic import make_survey, write_tiles

    return write_tiles(make_survey(160.0, 120.0, seed=3), str(tmp_path_factory.mktemp("tiles")))


def test_geospatial_output_safety(tiles, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    data = Path(tiles[0]).parent
    inputs = _state(data)
    assert "is an input" in _refused(["geospatial", "classify", tiles[0], "--out", tiles[0], "--quiet"], capsys)
    _refused(["geospatial", "dem", str(data), "--out", str(data), "--tile-size", "100", "--quiet"], capsys)
    _refused(["geospatial", "dem", str(data), "--out", tiles[1], "--tile-size", "100", "--quiet"], capsys)
    assert _state(data) == inputs

    out = tmp_path / "dem.tif"
    dem = ["geospatial", "dem", str(data), "--out", str(out), "--tile-size", "100", "--quiet"]
    assert main(dem) == 0
    first = _state(tmp_path)["dem.tif"]
    os.makedirs(tmp_path / "dem-folder.tif")
    _refused([*dem[:4], str(tmp_path / "dem-folder.tif"), *dem[5:]], capsys)
    assert main(dem) == 0 and _state(tmp_path)["dem.tif"] == first
    assert _state(data) == inputs
