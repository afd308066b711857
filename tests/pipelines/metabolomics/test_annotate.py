"""End-to-end annotation: real FTICR slice, synthetic acceptance, determinism, executors, CLI."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from cloudbutton.core.cli import main
from cloudbutton.core.errors import InputError
from cloudbutton.pipelines.metabolomics import Settings, annotate, build_annotate_job
from cloudbutton.pipelines.metabolomics.pipeline import annotate_task_mb, plan_segments
from cloudbutton.pipelines.metabolomics.synthetic import SyntheticDataset

from .conftest import PC_34_1

# The slice's metadata: FTICR, RP 80 000 at m/z 700.  ppm 4: in half of its 8 pixels the first isotope
# of PC(34:1)+K sits 3.8 ppm off, and with 8 pixels that alone zeroes the spatial metric at ppm 3.
SPHEROID = {"instrument": "fticr", "resolving_power": 80000, "resolving_power_mz": 700, "ppm": 4}


def _rows(out: Path) -> list[dict[str, str]]:
    with open(out / "annotations.csv") as handle:
        return list(csv.DictReader(handle))


def test_spheroid_base_peak_is_pc_34_1_k(spheroid: Path, spheroid_db: str, centroid_cache: str,
                                          tmp_path: Path) -> None:
    result = annotate(str(spheroid), spheroid_db, str(tmp_path / "out"), centroid_cache=centroid_cache,
                      quiet=True, **SPHEROID)
    rows = {(r["formula"], r["adduct"]): r for r in _rows(tmp_path / "out")}
    pc = rows[(PC_34_1, "+K")]
    assert abs(float(pc["mz"]) - 798.5410) < 0.002 and int(pc["n_pixels"]) == 8
    assert abs(float(pc["spectral"]) - 0.97) < 0.03  # 0.907 at ppm 3 (METASPACE, full dataset: 0.898)
    assert abs(float(pc["mz_err_ppm"])) < 3.0
    assert result.value["annotations"] == len(rows)
    assert result.value["instrument"] == "fticr (given), RP 80000@700 (given), positive"
    assert (tmp_path / "out" / "kpi.json").is_file()
    assert all(float(r["fdr"]) < 1 and float(r["msm"]) > 0 for r in rows.values())


def _score(ds: SyntheticDataset, out: Path) -> tuple[float, float, int]:
    hits = {(r["formula"], r["adduct"]) for r in _rows(out) if float(r["fdr"]) <= 0.1}
    recall = len(hits & ds.planted) / len(ds.planted)
    empirical_fdr = len(hits - ds.planted) / max(1, len(hits))
    return recall, empirical_fdr, len(hits & ds.wrong)


def test_synthetic_acceptance(synthetic_sets: list[SyntheticDataset], centroid_cache: str, tmp_path: Path) -> None:
    fdrs = []
    for ds in synthetic_sets:
        out = tmp_path / Path(ds.imzml).stem
        annotate(ds.imzml, ds.db, str(out), centroid_cache=centroid_cache, quiet=True)
        recall, empirical_fdr, wrong = _score(ds, out)
        assert len(ds.planted) >= 40 and recall >= 0.9, (ds.imzml, recall)
        assert wrong == 0, ds.imzml
        assert (out / "images").is_dir() and len(list((out / "images").glob("*.png"))) >= len(ds.planted) * 0.9
        fdrs.append(empirical_fdr)
    assert sum(fdrs) / len(fdrs) <= 0.15, fdrs


def test_one_vs_many_partitions_identical(synthetic_sets: list[SyntheticDataset], centroid_cache: str,
                                          tmp_path: Path) -> None:
    ds = synthetic_sets[0]
    one, many = tmp_path / "one", tmp_path / "many"
    annotate(ds.imzml, ds.db, str(one), centroid_cache=centroid_cache, dataset_partitions=1, segments=1, quiet=True)
    annotate(ds.imzml, ds.db, str(many), centroid_cache=centroid_cache, dataset_partitions=7, segments=11,
             workers=3, quiet=True)
    assert len(_rows(one)) >= 40
    for name in ("annotations.csv", "scores.csv"):
        assert (one / name).read_bytes() == (many / name).read_bytes(), name


def test_executors_identical(spheroid: Path, spheroid_db: str, centroid_cache: str, tmp_path: Path) -> None:
    outputs = {}
    for executor in ("threads", "processes", "lithops", "spark"):
        out = tmp_path / executor
        annotate(str(spheroid), spheroid_db, str(out), executor=executor, workers=2, centroid_cache=centroid_cache,
                 dataset_partitions=3, segments=3, quiet=True, **SPHEROID)
        outputs[executor] = (out / "annotations.csv").read_bytes()
    assert outputs["threads"].count(b"\n") > 3
    assert len(set(outputs.values())) == 1, {k: len(v) for k, v in outputs.items()}


def test_cli_success_and_one_line_errors(spheroid: Path, spheroid_db: str, centroid_cache: str, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    args = ["metabolomics", "annotate", str(spheroid), "--db", spheroid_db, "--out", str(out),
            "--instrument", "fticr", "--resolving-power", "80000", "--resolving-power-mz", "700", "--ppm", "4",
            "--centroid-cache", centroid_cache, "--quiet"]
    assert main(args) == 0
    assert any(r["formula"] == PC_34_1 and r["adduct"] == "+K" for r in _rows(out))
    bad_db = tmp_path / "bad.csv"
    bad_db.write_text("sf\nC6H12O6\nC6H1Qq\n")
    bad_out = tmp_path / "never"
    capsys.readouterr()
    assert main([*args[:4], str(bad_db), "--out", str(bad_out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "bad.csv: line 3:" in err
    assert main(["metabolomics", "annotate", str(tmp_path / "nope.imzML"), "--db", spheroid_db,
                 "--out", str(bad_out), "--quiet"]) == 2
    assert "nope.imzML: no such file" in capsys.readouterr().err
    for option, value, message in (("--ppm", "5000", "--ppm: 5000 is outside 0.1-100 ppm"),
                                   ("--decoys", "0", "--decoys: 0: the FDR needs at least 1 decoy")):
        assert main([*args[:6], str(bad_out), option, value, "--quiet"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and message in err, err
    assert not bad_out.exists()


def test_molecules_isomers_and_one_fdr_per_database(synthetic_sets: list[SyntheticDataset], centroid_cache: str,
                                                    tmp_path: Path) -> None:
    """METASPACE upload format names every molecule of a formula; each --db is ranked on its own."""
    ds = synthetic_sets[0]
    formulas = [line.split(",")[1] for line in Path(ds.db).read_text().splitlines()[1:]]
    planted = sorted({f for f, _ in ds.planted})
    upload = tmp_path / "upload.tsv"  # id, name, formula: two isomers of one planted formula
    upload.write_text("id\tname\tformula\n" + "".join(f"M{i}\tmolecule {i}\t{f}\n" for i, f in enumerate(planted))
                      + f"X1\tan isomer\t{planted[0]}\n")
    alone, both = tmp_path / "alone", tmp_path / "both"
    annotate(ds.imzml, ds.db, str(alone), centroid_cache=centroid_cache, quiet=True)
    result = annotate(ds.imzml, [ds.db, str(upload)], str(both), centroid_cache=centroid_cache,
                      adducts=["[M+H]+", "[M+Na]+", "[M+K]+"], quiet=True)
    rows = _rows(both)
    by_db = {name: [r for r in rows if r["database"] == name] for name in ("seed0_db", "upload")}
    assert result.value["databases"] == ["seed0_db", "upload"] and all(by_db.values())
    # the full database's ranking is the same as when it runs alone (no merged ranking)
    assert by_db["seed0_db"] == [r for r in _rows(alone)]
    assert {r["formula"] for r in by_db["upload"]} <= set(planted) and set(planted) <= set(formulas)
    isomer_rows = [r for r in by_db["upload"] if r["formula"] == planted[0]]
    assert isomer_rows and all(r["n_isomers"] == "2" and r["molecule_ids"] == "M0;X1"
                               and r["molecule_names"] == "molecule 0;an isomer" for r in isomer_rows)
    assert {(r["formula"], r["adduct"]) for r in by_db["upload"]} == {
        (r["formula"], r["adduct"]) for r in by_db["seed0_db"] if r["formula"] in planted
        and float(r["fdr"]) <= 0.1} | {(r["formula"], r["adduct"]) for r in by_db["upload"]}
    with open(both / "metaspace_annotations.csv") as handle:
        exported = list(csv.DictReader(handle))
    assert len(exported) == len(rows)
    assert {"rhoSpatial", "rhoSpectral", "rhoChaos", "moleculeNames", "isomers", "isobars",
            "totalIntensity"} <= set(exported[0])
    first = next(r for r in exported if r["formula"] == planted[0] and r["database"] == "upload")
    assert first["moleculeNames"] == "molecule 0, an isomer" and first["ion"].endswith("+")
    images = {p.name for p in (both / "images").glob("*.png")}
    confident = {r["ion"] for r in rows if float(r["fdr"]) <= 0.1}
    assert {f"{ion}.png" for ion in confident} <= images
    assert any(p.name.endswith(".isotope1.png") for p in (both / "images" / "isotopes").glob("*.png"))
    assert not Path(str(both) + ".images-staging").exists()


def test_plan_refuses_segments_over_memory(synthetic_sets: list[SyntheticDataset], tmp_path: Path) -> None:
    """The per-task memory projection picks enough segments, or names the count that would fit."""
    ds = synthetic_sets[0]
    ibd = Path(ds.imzml).with_suffix(".ibd").stat().st_size
    one = annotate_task_mb(ibd, 20_000, 1)
    assert annotate_task_mb(ibd, 20_000, 4) < one and annotate_task_mb(ibd * 9, 20_000, 9) < one * 1.2
    budget = int(annotate_task_mb(ibd, 20_000, 3)) + 1
    assert plan_segments(ibd, 20_000, None, budget) >= 3
    with pytest.raises(InputError, match=r"--memory: .* with 1 segments; --segments 3 would fit"):
        plan_segments(ibd, 20_000, 1, budget)
    with pytest.raises(InputError, match="no segment count fits"):
        build_annotate_job(ds.imzml, ds.db, str(tmp_path / "out"), Settings(segments=2, memory_mb=64))
