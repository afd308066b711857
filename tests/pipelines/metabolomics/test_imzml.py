"""imzML reading: both layouts, all dtypes, gaps, duplicates, zero peaks, and clear errors."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from pyimzml.compression import ZlibCompression
from pyimzml.ImzMLParser import ImzMLParser
from pyimzml.ImzMLWriter import ImzMLWriter

from cloudbutton.core.errors import InputError
from cloudbutton.pipelines.metabolomics.imzml import read_metadata, read_peaks, spectra_ranges


def _all_peaks(meta, n_parts: int) -> tuple[np.ndarray, ...]:
    parts = [read_peaks(r) for r in spectra_ranges(meta, n_parts)]
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(3))


def _write(path: Path, spectra, mz_dtype=np.float64, int_dtype=np.float32, **kwargs) -> str:
    with ImzMLWriter(str(path), mz_dtype=mz_dtype, intensity_dtype=int_dtype, mode="processed",
                     spec_type="centroid", **kwargs) as writer:
        for mzs, ints, xy in spectra:
            writer.addSpectrum(np.asarray(mzs, dtype=mz_dtype), np.asarray(ints, dtype=int_dtype), xy)
    return str(path)


@pytest.mark.parametrize("layout", ["Continuous", "Processed"])
def test_shared_examples_match_pyimzml(shared_data: Path, layout: str) -> None:
    path = shared_data / "metabolomics" / "imzml_examples" / f"Example_{layout}.imzML"
    meta = read_metadata(str(path), require_centroid=False)
    assert meta.shape == (3, 3) and len(meta.pixels) == 9
    mz, ints, pix = _all_peaks(meta, 4)
    parser = ImzMLParser(str(path), parse_lib="ElementTree")
    ref_mz = np.concatenate([parser.getspectrum(i)[0] for i in range(9)])
    ref_int = np.concatenate([parser.getspectrum(i)[1] for i in range(9)])
    keep = ref_int > 0
    assert np.array_equal(mz, ref_mz[keep]) and np.array_equal(ints, ref_int[keep])
    assert len(np.unique(pix)) == 9


def test_both_layouts_read_identically(shared_data: Path) -> None:
    folder = shared_data / "metabolomics" / "imzml_examples"
    a = _all_peaks(read_metadata(str(folder / "Example_Continuous.imzML"), require_centroid=False), 1)
    b = _all_peaks(read_metadata(str(folder / "Example_Processed.imzML"), require_centroid=False), 3)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_profile_mode_is_refused(shared_data: Path) -> None:
    with pytest.raises(InputError, match="profile-mode spectra"):
        read_metadata(str(shared_data / "metabolomics" / "imzml_examples" / "Example_Continuous.imzML"))


def test_spheroid_processed_float64(spheroid: Path) -> None:
    meta = read_metadata(str(spheroid))
    assert meta.mz_dtype == "<f8" and meta.int_dtype == "<f4" and len(meta.pixels) == 8
    mz, ints, _ = _all_peaks(meta, 3)
    assert 946 * 8 <= len(mz) <= 1128 * 8 and abs(mz[np.argmax(ints)] - 798.5432) < 1e-3


@pytest.mark.parametrize("mz_dtype,int_dtype", [(np.float32, np.float32), (np.float64, np.float64),
                                                (np.float32, np.float64), (np.float64, np.float32)])
def test_dtypes_gaps_duplicates_zeros(tmp_path: Path, mz_dtype, int_dtype) -> None:
    spectra = [([100.0, 200.0, 300.0], [1.0, 0.0, 3.0], (2, 5)),  # a zero peak, coordinates not from 1
               ([100.0, 250.0], [2.0, 4.0], (5, 5)),  # a gap in x
               ([100.0, 200.0], [5.0, 6.0], (2, 5))]  # duplicate coordinate
    meta = read_metadata(_write(tmp_path / "t.imzML", spectra, mz_dtype, int_dtype))
    assert meta.shape == (1, 4) and meta.pixels.tolist() == [0, 3, 0]
    assert meta.sample_area.tolist() == [0, 3]
    mz, ints, pix = _all_peaks(meta, 2)
    assert np.allclose(mz, [100, 300, 100, 250, 100, 200]) and np.allclose(ints, [1, 3, 2, 4, 5, 6])
    assert pix.tolist() == [0, 0, 3, 3, 0, 0]


def test_bad_inputs_fail_clearly(tmp_path: Path, spheroid: Path) -> None:
    lone = tmp_path / "lone" / "x.imzML"
    lone.parent.mkdir()
    shutil.copy(spheroid, lone)
    with pytest.raises(InputError, match=r"x\.ibd: missing \.ibd"):
        read_metadata(str(lone))
    short = tmp_path / "short"
    short.mkdir()
    shutil.copy(spheroid, short / "s.imzML")
    (short / "s.ibd").write_bytes(spheroid.with_suffix(".ibd").read_bytes()[:50000])
    with pytest.raises(InputError, match=r"s\.ibd: truncated"):
        read_metadata(str(short / "s.imzML"))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "b.imzML").write_text(spheroid.read_text()[:5000])
    shutil.copy(spheroid.with_suffix(".ibd"), broken / "b.ibd")
    with pytest.raises(InputError, match=r"b\.imzML: unreadable XML"):
        read_metadata(str(broken / "b.imzML"))
    zipped = _write(tmp_path / "z.imzML", [([100.0, 200.0], [1.0, 2.0], (1, 1))],
                    mz_compression=ZlibCompression(), intensity_compression=ZlibCompression())
    with pytest.raises(InputError, match="zlib compression"):
        read_metadata(zipped)


def test_foreign_ibd_and_empty_files_are_refused(tmp_path: Path) -> None:
    spectra = [([100.0, 200.0], [1.0, 2.0], (1, 1)), ([100.0, 250.0], [3.0, 4.0], (2, 1))]
    a = _write(tmp_path / "a.imzML", spectra)
    b = _write(tmp_path / "b.imzML", spectra)  # same layout, another UUID
    assert read_metadata(a).analyser is None
    shutil.copy(tmp_path / "b.ibd", tmp_path / "a.ibd")
    with pytest.raises(InputError, match=r"a\.ibd: belongs to another dataset"):
        read_metadata(a)
    ibd = (tmp_path / "b.ibd").read_bytes()
    (tmp_path / "b.ibd").write_bytes(np.random.default_rng(0).bytes(len(ibd)))  # random bytes, right size
    with pytest.raises(InputError, match="belongs to another dataset"):
        read_metadata(b)
    empty = tmp_path / "empty.imzML"
    text = Path(_write(tmp_path / "one.imzML", spectra[:1])).read_text()
    text = re.sub(r"<spectrum .*</spectrum>", "", text, flags=re.S).replace('spectrumList count="1"',
                                                                          'spectrumList count="0"')
    empty.write_text(text)
    shutil.copy(tmp_path / "one.ibd", tmp_path / "empty.ibd")
    with pytest.raises(InputError, match=r"empty\.imzML: no spectra"):
        read_metadata(str(empty))


def test_non_finite_values_are_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "nan.imzML", [([100.0, 200.0], [1.0, 2.0], (1, 1)),
                                           ([100.0, 200.0], [np.nan, 2.0], (2, 1))])
    meta = read_metadata(path)
    with pytest.raises(InputError, match=r"nan\.ibd: spectrum 1: non-finite"):
        _all_peaks(meta, 1)


def test_analyser_and_resolution_from_the_imzml(tmp_path: Path) -> None:
    path = Path(_write(tmp_path / "ft.imzML", [([100.0, 200.0], [1.0, 2.0], (1, 1))]))
    text = path.read_text()
    config = re.search(r"<instrumentConfiguration [^>]*>", text).group(0)
    text = text.replace(config, config + '<cvParam cvRef="MS" accession="MS:1000011" name="mass resolution" '
                        'value="250000"/><componentList count="1"><analyzer order="1">'
                        '<cvParam cvRef="MS" accession="MS:1000079" '
                        'name="fourier transform ion cyclotron resonance mass spectrometer"/></analyzer>'
                        '</componentList>', 1)
    path.write_text(text)
    meta = read_metadata(str(path))
    assert meta.analyser == "fticr" and meta.resolving_power == 250000.0
