"""Inputs that must work (LAS 1.2-1.4, formats 0-10, empty tiles) or fail clearly (one line, no output)."""
from __future__ import annotations

import os
import struct
import subprocess
import sys

import laspy
import numpy as np
import pytest
from laspy.vlrs.vlrlist import VLRList
from pyproj import CRS

from cloudbutton.core.errors import InputError
from cloudbutton.pipelines.geospatial import classify, dem
from cloudbutton.pipelines.geospatial.ground import GroundFilter
from cloudbutton.pipelines.geospatial.pipeline import raster_summary, build_classify_job, build_dem_job
from cloudbutton.pipelines.geospatial.lasio import ReadPart, plan_reads, read_part, read_source
from cloudbutton.pipelines.geospatial.synthetic import make_survey, write_tiles

from .geospatial_helpers import read_dem


def _write(path, pf: int, n: int = 40, crs: str | None = "EPSG:25831", cls: int = 2, version: str | None = None):
    version = version or ("1.2" if pf <= 3 else "1.3" if pf <= 5 else "1.4")
    header = laspy.LasHeader(point_format=pf, version=version)
    header.scales, header.offsets = [0.01] * 3, [0.0] * 3
    if crs:
        header.add_crs(CRS.from_user_input(crs))
    las = laspy.LasData(header)
    rng = np.random.default_rng(pf)
    las.x, las.y, las.z = rng.uniform(500, 520, n), rng.uniform(700, 720, n), rng.uniform(10, 11, n)
    las.classification = np.full(n, cls, np.uint8)
    withheld = np.zeros(n, bool)
    withheld[::4] = True
    las.withheld = withheld
    las.write(str(path))
    return str(path)


@pytest.mark.parametrize("pf", range(11))
@pytest.mark.parametrize("suffix", [".las", ".laz"])
def test_every_point_format_reads_and_skips_withheld(tmp_path, pf, suffix):
    path = _write(tmp_path / f"pf{pf}{suffix}", pf)
    src = read_source(path)
    assert src.point_format == pf and src.count == 40
    assert CRS.from_wkt(src.crs_wkt).to_epsg() == 25831
    pts = read_part(ReadPart(src, 0, src.count), chunk=7)  # several chunks
    assert len(pts.x) == 30  # every fourth point is withheld
    np.testing.assert_array_equal(pts.index, [i for i in range(40) if i % 4])
    # Ranges (a seek into the LAZ stream for all but the first) read the same points.
    parts = [read_part(part, chunk=5) for part in plan_reads([src], points_per_part=13)]
    assert len(parts) == 4
    np.testing.assert_array_equal(np.concatenate([p.index for p in parts]), pts.index)
    np.testing.assert_array_equal(np.concatenate([p.z for p in parts]), pts.z)


@pytest.mark.parametrize("suffix", [".las", ".laz"])
def test_crs_in_an_extended_vlr_is_found(tmp_path, suffix):
    header = laspy.LasHeader(point_format=6, version="1.4")
    header.add_crs(CRS.from_epsg(25831))
    moved = VLRList(header.vlrs)
    header.vlrs = VLRList()
    las = laspy.LasData(header)
    las.x, las.y, las.z = np.arange(5.0), np.arange(5.0), np.arange(5.0)
    las.evlrs = moved
    las.write(str(tmp_path / f"evlr{suffix}"))
    assert laspy.open(tmp_path / f"evlr{suffix}").header.number_of_evlrs == 1
    assert CRS.from_wkt(read_source(str(tmp_path / f"evlr{suffix}")).crs_wkt).to_epsg() == 25831


def test_missing_crs_needs_crs_option(tmp_path):
    paths = write_tiles(make_survey(60, 40, density=1.0, seed=1), str(tmp_path / "in"), 1, 1, crs=None)
    with pytest.raises(InputError, match="no CRS"):
        dem(paths, str(tmp_path / "a.tif"), ground="class", quiet=True)
    dem(paths, str(tmp_path / "b.tif"), ground="class", crs="EPSG:25831", quiet=True)
    assert read_dem(tmp_path / "b.tif")[2].to_epsg() == 25831


def test_mixed_crs_is_an_error_unless_forced(tmp_path):
    a = _write(tmp_path / "a.las", 1, crs="EPSG:25831")
    b = _write(tmp_path / "b.las", 1, crs="EPSG:25830")
    with pytest.raises(InputError, match="b.las: CRS differs"):
        dem([a, b], str(tmp_path / "x.tif"), quiet=True)
    with pytest.raises(InputError, match="not a valid CRS"):
        dem([a, b], str(tmp_path / "x.tif"), crs="EPSG:nonsense", quiet=True)
    with pytest.raises(InputError, match=r"b.las: its CRS \(ETRS89 / UTM zone 30N\) differs from --crs EPSG:25831"):
        dem([a, b], str(tmp_path / "x.tif"), crs="EPSG:25831", quiet=True)
    with pytest.raises(InputError, match="--force-crs: needs --crs"):
        dem([a, b], str(tmp_path / "x.tif"), force_crs=True, quiet=True)
    assert not (tmp_path / "x.tif").exists()
    dem([a, b], str(tmp_path / "x.tif"), crs="EPSG:25831", force_crs=True, ground="class", quiet=True)
    assert read_dem(tmp_path / "x.tif")[2].to_epsg() == 25831


def test_geographic_crs_is_an_error(tmp_path):
    a = _write(tmp_path / "deg.las", 1, crs="EPSG:4326")
    with pytest.raises(InputError, match="deg.las: WGS 84 is geographic"):
        dem(a, str(tmp_path / "x.tif"), ground="class", quiet=True)
    assert not (tmp_path / "x.tif").exists()


def test_smrf_defaults_follow_the_crs_unit(shared_data, tmp_path):
    """PDAL's defaults are metres: on autzen (feet) the SMRF cell is 3.28 ft, the window 59 ft, ELM's cell 33 ft."""
    feet = build_dem_job(str(shared_data / "geospatial" / "autzen_trim.laz"), str(tmp_path / "a.tif"))
    flt = feet.graph.stages["ground"].params["flt"]
    assert flt.smrf.cell == pytest.approx(1 / 0.3048, rel=1e-6)
    assert flt.smrf.window == pytest.approx(18 / 0.3048, rel=1e-6)
    assert flt.smrf.threshold == pytest.approx(0.5 / 0.3048, rel=1e-6) and flt.smrf.slope == 0.15
    assert flt.smrf.scalar == pytest.approx(1.25 / 0.3048, rel=1e-6)  # metres of threshold per unit of slope
    assert flt.elm.cell == pytest.approx(10 / 0.3048, rel=1e-6)
    given = build_dem_job(str(shared_data / "geospatial" / "autzen_trim.laz"), str(tmp_path / "a.tif"),
                          smrf={"window": 40.0})
    assert given.graph.stages["ground"].params["flt"].smrf.window == 40.0  # given values are map units
    metres = build_dem_job(str(shared_data / "geospatial" / "Topography.laz"), str(tmp_path / "b.tif"))
    assert metres.graph.stages["ground"].params["flt"] == GroundFilter()
    raw = build_dem_job(str(shared_data / "geospatial" / "Topography.laz"), str(tmp_path / "b.tif"), denoise=False)
    assert raw.graph.stages["ground"].params["flt"].elm is None


def test_vertical_feet_over_metres_classify_as_metres(tmp_path):
    """z in US feet under a metric horizontal CRS: thresholds follow the vertical unit, so the ground found is
    the one found on the same survey in metres."""
    survey = make_survey(120, 100, seed=4)
    metric = write_tiles(survey, str(tmp_path / "m"), 1, 1)[0]
    header = laspy.LasHeader(point_format=6, version="1.4")
    header.offsets, header.scales = [survey.x.min(), survey.y.min(), 0.0], [0.01, 0.01, 0.001]
    header.add_crs(CRS.from_user_input("EPSG:25831+6360"))  # ETRS89 / UTM 31N + NAVD88 height (ftUS)
    las = laspy.LasData(header)
    las.x, las.y, las.z = survey.x, survey.y, survey.z / (1200 / 3937)
    las.return_number, las.number_of_returns = survey.return_number, survey.number_of_returns
    las.write(str(tmp_path / "feet.las"))
    flt = build_classify_job(str(tmp_path / "feet.las"), str(tmp_path / "f.las")).graph.stages["ground"].params["flt"]
    assert flt.smrf.cell == 1.0 and flt.smrf.threshold == pytest.approx(0.5 * 3937 / 1200)
    assert flt.smrf.slope == pytest.approx(0.15 * 3937 / 1200)  # feet of rise per metre of run
    classify(str(tmp_path / "feet.las"), str(tmp_path / "f.las"), quiet=True)
    classify(metric, str(tmp_path / "m.las"), quiet=True)
    feet_ground = np.asarray(laspy.read(tmp_path / "f.las").classification) == 2
    metre_ground = np.asarray(laspy.read(tmp_path / "m.las").classification) == 2
    assert np.mean(feet_ground == metre_ground) > 0.999  # z rounding differs; ignoring the unit gives 0.995


def test_truncated_laz_fails_before_work(shared_data, tmp_path):
    data = (shared_data / "geospatial" / "autzen_trim.laz").read_bytes()
    bad = tmp_path / "cut.laz"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="cut.laz: truncated"):
        dem(str(bad), str(tmp_path / "x.tif"), quiet=True)


def test_corrupt_laz_fails_with_one_line_and_no_output(shared_data, tmp_path):
    data = bytearray((shared_data / "geospatial" / "autzen_trim.laz").read_bytes())
    mid = len(data) // 2
    data[mid : mid + 5000] = np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes()
    bad = tmp_path / "bad.laz"
    bad.write_bytes(bytes(data))
    out = tmp_path / "x.tif"
    with pytest.raises(InputError, match="bad.laz: corrupt or truncated point data"):
        dem(str(bad), str(out), ground="class", workers=1, retries=0, quiet=True)
    assert not out.exists()


def test_not_a_las_file(tmp_path):
    bad = tmp_path / "notes.las"
    bad.write_text("hello\n" * 100)
    with pytest.raises(InputError, match="notes.las: not a LAS/LAZ file"):
        dem(str(bad), str(tmp_path / "x.tif"), quiet=True)


def test_missing_input_and_empty_folder(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        dem(str(tmp_path / "nope.laz"), str(tmp_path / "x.tif"), quiet=True)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no .las or .laz"):
        dem(str(tmp_path / "empty"), str(tmp_path / "x.tif"), quiet=True)


def test_absurd_grid_fails_before_any_task(shared_data, tmp_path):
    with pytest.raises(InputError, match="--resolution"):
        dem(str(shared_data / "geospatial" / "Topography.laz"), str(tmp_path / "x.tif"), resolution=0.001,
            quiet=True)
    assert not (tmp_path / "kpi.json").exists()


def test_file_without_points_is_an_error_alone_or_in_a_catalog(tmp_path):
    empty = _write(tmp_path / "empty.las", 3, n=0)
    full = _write(tmp_path / "full.las", 3)
    for inputs in (empty, [full, empty]):
        with pytest.raises(InputError, match="empty.las: no points"):
            dem(inputs, str(tmp_path / "x.tif"), quiet=True)
    assert not (tmp_path / "x.tif").exists()


def test_points_outside_the_header_box_fail_the_read(tmp_path):
    """A header box too small would silently crop the DTM: the read task refuses the file."""
    path = _write(tmp_path / "box.las", 1, n=400)
    raw = bytearray(open(path, "rb").read())
    struct.pack_into("<d", raw, 179, 510.0)  # LAS 1.2 header: max X at byte 179 (points reach 520)
    open(path, "wb").write(bytes(raw))
    assert read_source(path).bounds[2] == 510.0
    with pytest.raises(InputError, match=r"box.las: point \(5\d\d\.\d+, .*outside the header's bounding box"):
        dem(path, str(tmp_path / "x.tif"), ground="class", retries=0, quiet=True)
    assert not (tmp_path / "x.tif").exists()


@pytest.mark.parametrize("res", [1e9, 5000.0, 25.0])
def test_a_resolution_giving_fewer_than_2x2_cells_is_an_error(tmp_path, res):
    path = _write(tmp_path / "small.las", 1)  # 20 x 20 m
    with pytest.raises(InputError, match=r"--resolution: .* at least 2 x 2 cells"):
        dem(path, str(tmp_path / "x.tif"), resolution=res, quiet=True)


def test_outputs_must_be_geotiffs(tmp_path, sample_tiles):
    with pytest.raises(InputError, match=r"dem.png: output must be a GeoTIFF \(.tif\)"):
        dem(sample_tiles, str(tmp_path / "dem.png"), quiet=True)
    with pytest.raises(InputError, match="shade.jpg: output must be a .png picture or a .tif GeoTIFF"):
        dem(sample_tiles, str(tmp_path / "dem.tif"), hillshade=str(tmp_path / "shade.jpg"), quiet=True)


def test_summary_names_the_uncertain_tiles():
    value = {"out": "d.tif", "width": 10, "height": 10, "resolution": 1.0, "valid_fraction": 1.0, "tiles": 4,
             "uncertain_cores": [(100.0, 200.0, 150.0, 250.0)]}
    assert raster_summary(value).endswith("1 uncertain tile (a hole wider than the halo: cells may differ from an "
                                        "untiled run; a larger --buffer checks them): x 100-150 y 200-250")
    assert "uncertain" not in raster_summary({**value, "uncertain_cores": []})


def test_tiles_without_ground_give_nodata_not_a_crash(tmp_path):
    ground = _write(tmp_path / "ground.las", 1, cls=2)
    roofs = _write(tmp_path / "roofs.las", 1, cls=6)
    with laspy.open(roofs) as f:  # move the roof-only file 200 m east, away from the ground
        las = f.read()
    las.x = np.asarray(las.x) + 200
    las.write(roofs)
    dem([ground, roofs], str(tmp_path / "x.tif"), ground="class", tile_size=50, buffer=5, quiet=True)
    z = read_dem(tmp_path / "x.tif")[0]
    assert np.isfinite(z[:, :20]).any() and np.isnan(z[:, -50:]).all()


def test_bad_options(tmp_path, sample_tiles):
    with pytest.raises(InputError, match="--ground"):
        dem(sample_tiles, str(tmp_path / "x.tif"), ground="magic", quiet=True)
    with pytest.raises(InputError, match="--tile-size"):
        dem(sample_tiles, str(tmp_path / "x.tif"), tile_size=-1, quiet=True)
    with pytest.raises(InputError, match="must end in .las or .laz"):
        classify(sample_tiles[0], str(tmp_path / "x.txt"), quiet=True)
    with pytest.raises(InputError, match="SMRF"):
        classify(sample_tiles[0], str(tmp_path / "x.las"), cell=0, quiet=True)


def test_cli_reports_bad_input_in_one_line_with_exit_2(tmp_path):
    bad = tmp_path / "broken.laz"
    bad.write_bytes(b"LASF" + b"\0" * 50)
    out = tmp_path / "dem.tif"
    proc = subprocess.run(
        [sys.executable, "-m", "cloudbutton.core.cli", "geospatial", "dem", str(bad), "--out", str(out)],
        capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert proc.returncode == 2
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("cloudbutton: error:")]
    assert errors == [f"cloudbutton: error: {bad}: truncated LAS/LAZ header (54 bytes)"]
    assert not out.exists()


def test_object_storage_input_gives_the_same_raster(shared_data, tmp_path):
    from cloudbutton.core import storage

    uri = f"localhost://cloudbutton-geo-test/{tmp_path.name}/Topography.laz"
    storage.write_bytes(uri, (shared_data / "geospatial" / "Topography.laz").read_bytes())
    try:
        before = storage.remote_bytes()[0]
        assert read_source(uri).count == 73_403
        assert storage.remote_bytes()[0] - before < 10_000  # the index reads headers, not the 536 kB file
        dem(uri, str(tmp_path / "remote.tif"), ground="class", workers=2, quiet=True)
    finally:
        storage.delete_prefix(uri.rsplit("/", 1)[0] + "/")
    dem(str(shared_data / "geospatial" / "Topography.laz"), str(tmp_path / "local.tif"), ground="class", workers=2,
        quiet=True)
    np.testing.assert_array_equal(read_dem(tmp_path / "remote.tif")[0], read_dem(tmp_path / "local.tif")[0])


def test_a_read_task_fetches_only_its_range_of_a_remote_laz(tmp_path):
    """Each read task transfers its own LAZ chunks (and the headers), not the whole object."""
    from cloudbutton.core import storage

    rng = np.random.default_rng(5)
    n = 1_500_000
    header = laspy.LasHeader(point_format=6, version="1.4")
    header.add_crs(CRS.from_epsg(25831))
    las = laspy.LasData(header)
    las.x, las.y, las.z = rng.uniform(0, 500, n), rng.uniform(0, 500, n), rng.uniform(0, 50, n)
    local = tmp_path / "big.laz"
    las.write(str(local))
    uri = f"localhost://cloudbutton-geo-test/{tmp_path.name}/big.laz"
    storage.write_bytes(uri, local.read_bytes())
    try:
        remote = read_source(uri)
        parts = plan_reads([remote], points_per_part=250_000)
        before = storage.remote_bytes()[0]
        last = read_part(parts[-1])
        fetched = storage.remote_bytes()[0] - before
    finally:
        storage.delete_prefix(uri.rsplit("/", 1)[0] + "/")
    assert fetched < 0.4 * local.stat().st_size  # the last sixth of the points, plus 1 MB read-ahead blocks
    expected = read_part(plan_reads([read_source(str(local))], points_per_part=250_000)[-1])
    np.testing.assert_array_equal(last.index, expected.index)
    np.testing.assert_array_equal(last.z, expected.z)
