"""Isotope centroids against cpyMSpec: its published values, its element table and its algorithm."""
from __future__ import annotations

import numpy as np
import pytest

from cloudbutton.core import storage
from cloudbutton.pipelines.metabolomics.centroids import N_SHARDS, CentroidTask, compute_centroids
from cloudbutton.pipelines.metabolomics.formulas import ion_formula, parse_formula
from cloudbutton.pipelines.metabolomics.ions import build_ion_table
from cloudbutton.pipelines.metabolomics.isotopes import (CENTROIDER_VERSION, IsotopeModel, fine_structure, ion_centroids,
                                                          ion_patterns)

from . import cpymspec_oracle

# C6H12O6+H at Orbitrap 140K: (m/z, intensity) of cpyMSpec 0.3.5 (v1) and 0.4.2 (instrument model)
REFERENCE = {
    "v1": [(181.070625, 100), (182.074073, 6.683), (183.075015, 1.260), (184.078283, 0.080)],
    "instrument": [(181.070690, 100), (182.074024, 6.662), (183.074978, 1.246), (184.078288, 0.080)],
}
IONS = [("C6H12O6", "+H"), ("C42H82NO8P", "+K"), ("C10H16N5O13P3", "-H"), ("C8H9Cl2NO", "+Na"),
        ("C3H7NO2S", "+H"), ("C20H30Br2O4", "+H"), ("C55H98O6", "+Na")]
MODELS = [("orbitrap", 140000, 200, "v1", 1), ("orbitrap", 140000, 200, "instrument", -1),
          ("fticr", 80000, 700, "instrument", 1), ("tof", 30000, 200, "instrument", 1), ("fticr", 80000, 700, "v1", -1)]


@pytest.mark.parametrize("peak_model", ["v1", "instrument"])
def test_hexose_matches_published_cpymspec(peak_model: str) -> None:
    mzs, ints = ion_centroids(["C6H12O6"], ["+H"], IsotopeModel("orbitrap", 140000, peak_model=peak_model))
    ref = np.array(REFERENCE[peak_model])
    assert np.all(np.abs(mzs[0] - ref[:, 0]) / ref[:, 0] * 1e6 <= 0.5)  # fine-peak set: IsoSpecPy vs cpyMSpec
    assert np.all(np.abs(ints[0] - ref[:, 1]) <= 0.005)  # 0.005 % of the base peak


def test_element_table_is_cpymspecs() -> None:
    """13C at 1.07 % (IsoSpecPy's own table says 1.0788 %): the M+1/M ratio of CH4 is 0.0107/0.9893 plus 4 2H."""
    mz, ab = fine_structure(parse_formula("CH4"), 1)
    order = np.argsort(mz)
    assert mz[order[0]] == pytest.approx(12 + 4 * 1.007825032 - 0.00054857990924, abs=1e-9)
    assert ab[order[1]] == pytest.approx(0.0107 / 0.9893, rel=1e-9)  # 13C 1H4
    assert ab[order[2]] == pytest.approx(4 * 0.000115 / 0.999885, rel=1e-9)  # 12C 1H3 2H


def test_v1_sigma_is_metaspaces_tof_model() -> None:
    """v1: cpyMSpec 'tof' with RP = top-peak m/z / FWHM, so sigma scales with m/z from the top peak."""
    model = IsotopeModel("orbitrap", 140000)
    top = 500.0
    assert model.sigma_at(np.array([top]), np.array([top]))[0] == pytest.approx(0.001238, rel=1e-12)
    assert model.sigma_at(np.array([502.0]), np.array([top]))[0] == pytest.approx(0.001238 * 502 / 500, rel=1e-12)
    orbi = IsotopeModel("orbitrap", 140000, peak_model="instrument")
    fwhm = 0.001238 * 2.3548200450309493
    assert orbi.sigma_at(np.array([800.0]), np.array([0.0]))[0] == pytest.approx(
        800 / (200 / fwhm * np.sqrt(200 / 800)) / 2.3548200450309493, rel=1e-12)


@pytest.mark.parametrize("instrument,rp,at_mz,peak_model,charge", MODELS)
def test_centroids_equal_cpymspec_algorithm(instrument: str, rp: float, at_mz: float, peak_model: str,
                                            charge: int) -> None:
    """The vectorised centroider against a step-by-step transcription of cpyMSpec's envelopeCentroids."""
    formulas, adducts = zip(*IONS)
    for charge in (charge,):
        model = IsotopeModel(instrument, rp, at_mz, charge=charge, peak_model=peak_model)
        mzs, ints = ion_centroids(list(formulas), list(adducts), model)
        for row, (formula, adduct) in enumerate(IONS):
            fine_mz, fine_ab = fine_structure(parse_formula(ion_formula(formula, adduct)), charge)
            top = np.array([fine_mz[np.argmax(fine_ab)]])
            ref_mz, ref_int = cpymspec_oracle.metaspace_centroids(
                fine_mz, fine_ab, lambda mz: float(model.sigma_at(np.array([mz]), top)[0]))
            assert np.allclose(mzs[row], ref_mz, rtol=1e-10, atol=0), (formula, adduct)
            assert np.allclose(ints[row], ref_int, rtol=0, atol=1e-5), (formula, adduct)


def test_sigma_bins_follow_metaspace() -> None:
    assert IsotopeModel("orbitrap", 140000).sigma == 0.001238
    assert IsotopeModel("fticr", 80000, at_mz=700).sigma == 0.000619  # the spheroid's config.json value
    assert IsotopeModel("tof", 30000).sigma == 0.002476


def test_negative_mode_and_padding() -> None:
    mzs, ints = ion_centroids(["C6H12O6", "H2"], ["-H", "+H"], IsotopeModel(charge=-1))
    assert abs(mzs[0, 0] - 179.056) < 0.001  # deprotonated hexose, electron added back
    assert ints[0, 0] == 100 and np.all(np.diff(mzs[0]) > 0)


def test_batch_independent_and_cache_identical(hmdb: list[str], tmp_path) -> None:
    model = IsotopeModel()
    formulas = hmdb[::500]
    batch = ion_centroids(formulas, ["+Na"] * len(formulas), model)
    single = [ion_centroids([f], ["+Na"], model) for f in formulas]
    assert np.array_equal(batch[0], np.vstack([s[0] for s in single]))
    assert np.array_equal(batch[1], np.vstack([s[1] for s in single]))
    ions = build_ion_table(formulas, ("+Na",), n_decoys=0)
    task = CentroidTask(tuple(range(N_SHARDS)))
    cold = compute_centroids(task, ions=ions, model=model, cache=str(tmp_path))
    assert list(tmp_path.rglob("*.npz")) and np.array_equal(ions.formulas[cold[0]], formulas)
    warm = compute_centroids(task, ions=ions, model=model, cache=str(tmp_path))
    assert np.array_equal(cold[1], batch[0]) and np.array_equal(warm[1], cold[1]) and np.array_equal(warm[2], cold[2])


def test_centroid_cache_in_object_storage(s3_server, tmp_path) -> None:
    """Every function and run can share one cache in object storage, keyed by the settings and the code version."""
    model = IsotopeModel()
    assert model.key().startswith(f"c{CENTROIDER_VERSION}-v1-orbitrap-rp140000@200")
    ions = build_ion_table(["C6H12O6", "C5H5N5", "C42H82NO8P"], ("+H", "+Na"), n_decoys=2)
    task = CentroidTask(tuple(range(N_SHARDS)))
    cache = s3_server.uri(f"centroid-cache-{tmp_path.name}")
    storage.configure(s3_server.lithops_config)
    try:
        cold = compute_centroids(task, ions=ions, model=model, cache=cache)
        shards = storage.list_prefix(cache)
        assert shards and all(f"/{model.key()}/shard-" in uri for uri in shards)
        warm = compute_centroids(task, ions=ions, model=model, cache=cache)
    finally:
        storage.configure(None)
    local = compute_centroids(task, ions=ions, model=model, cache=None)
    assert all(np.array_equal(a, b) and np.array_equal(a, c) for a, b, c in zip(cold, warm, local))


def test_fine_structure_reused_across_adducts_is_exact(hmdb: list[str]) -> None:
    """A formula's fine structure convolved with each added adduct equals the ion's own (targets and decoys)."""
    ions = build_ion_table(hmdb[::400], ("+H", "+Na", "+K"), n_decoys=20)
    formulas, modifiers = list(ions.formulas), list(ions.modifiers)
    for (mz, ab), formula, modifier in zip(ion_patterns(formulas, modifiers, 1), formulas, modifiers):
        ref_mz, ref_ab = fine_structure(parse_formula(ion_formula(formula, modifier)), 1)
        assert len(mz) == len(ref_mz) and np.allclose(mz, ref_mz, rtol=0, atol=1e-9), (formula, modifier)
        assert np.allclose(ab, ref_ab, rtol=1e-12, atol=0), (formula, modifier)
