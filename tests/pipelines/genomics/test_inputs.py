"""Inputs that must work (same records) or fail with a one-line error naming the file."""
from __future__ import annotations

import gzip
import os
import shutil

import numpy as np
import pysam
import pytest
from pysam import bcftools

from cloudbutton.core.cli import main
from cloudbutton.core.errors import InputError
from cloudbutton.pipelines.genomics import call


def _records(path: str) -> list[str]:
    with pysam.VariantFile(path) as vf:
        return [str(r) for r in vf]


@pytest.fixture(scope="module")
def baseline(tmp_path_factory, tiny):
    out = str(tmp_path_factory.mktemp("base") / "base.vcf.gz")
    call(tiny.bam, tiny.reference, out, chunks=2, workers=2, quiet=True)
    return _records(out)


def _call(tmp_path, bam, reference, **kw) -> list[str]:
    out = str(tmp_path / "out.vcf.gz")
    call(bam, reference, out, chunks=2, workers=2, quiet=True, **kw)
    return _records(out)


def test_output_passes_bcftools_view_and_has_header(tmp_path, tiny, baseline):
    out = str(tmp_path / "v.vcf.gz")
    call(tiny.bam, tiny.reference, out, chunks=2, workers=2, quiet=True)
    text = bcftools.view("-H", out)
    assert len(text.strip().splitlines()) == len(baseline) > 0
    with pysam.VariantFile(out) as vf:
        assert vf.header.contigs[tiny.contig].length == tiny.length
        assert {"reference", "cloudbutton_callCommand"} <= {r.key for r in vf.header.records}
        assert {"GT", "GQ", "DP", "AD", "PL"} <= set(vf.header.formats)
        assert set(r.filter.keys()[0] for r in vf) <= {"PASS", "LowQual"}
        assert {"DP", "MQ", "MQ0F", "DP4", "INDEL", "IDV", "IMF"} <= set(vf.header.info)
    with pysam.VariantFile(out) as vf:
        for rec in vf:
            assert sum(rec.info["DP4"]) == rec.info["DP"] >= sum(rec.samples[0]["AD"]) > 0
            assert 0 <= rec.info["MQ"] <= 60
            indel = any(len(a) != len(rec.ref) for a in rec.alts)
            assert rec.info.get("INDEL", False) == indel
            assert (rec.info["IDV"] >= 2) if indel else "IDV" not in rec.info
    assert os.path.exists(out + ".tbi")


def test_bam_without_index_is_indexed_into_the_cache(tmp_path, tiny, baseline, monkeypatch):
    monkeypatch.setenv("CLOUDBUTTON_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "user"
    folder.mkdir()
    bam = str(folder / "noindex.bam")
    shutil.copy(tiny.bam, bam)
    assert _call(tmp_path, bam, tiny.reference) == baseline
    assert os.listdir(folder) == ["noindex.bam"]  # nothing written beside the user's file
    assert len(os.listdir(tmp_path / "cache" / "indexes")) == 1
    assert _call(tmp_path, bam, tiny.reference) == baseline  # the cached index is reused
    assert len(os.listdir(tmp_path / "cache" / "indexes")) == 1


def test_unsorted_bam_without_index_fails_clearly(tmp_path, tiny, monkeypatch):
    monkeypatch.setenv("CLOUDBUTTON_CACHE", str(tmp_path / "cache"))
    bam = str(tmp_path / "unsorted.bam")
    with pysam.AlignmentFile(tiny.bam) as src, pysam.AlignmentFile(bam, "wb", template=src) as dst:
        for read in reversed(list(src)):
            dst.write(read)
    with pytest.raises(InputError, match="could not be indexed") as err:
        _call(tmp_path, bam, tiny.reference)
    assert err.value.path == bam and "\n" not in str(err.value)


def test_cram_with_reference(tmp_path, tiny, baseline):
    cram = str(tmp_path / "x.cram")
    pysam.view("-C", "-T", tiny.reference, "-o", cram, tiny.bam, catch_stdout=False)
    pysam.index(cram)
    assert _call(tmp_path, cram, tiny.reference) == baseline


def test_bgzip_reference_works_and_plain_gzip_fails_clearly(tmp_path, tiny, baseline):
    bgz = str(tmp_path / "ref.fa.gz")
    pysam.tabix_compress(tiny.reference, bgz)
    assert _call(tmp_path, tiny.bam, bgz) == baseline
    plain = str(tmp_path / "plain.fa.gz")
    with open(tiny.reference, "rb") as src, gzip.open(plain, "wb") as dst:
        dst.write(src.read())
    with pytest.raises(InputError, match="bgzip") as err:
        _call(tmp_path, tiny.bam, plain)
    assert err.value.path == plain


def _write_fasta(path, name, seq):
    with open(path, "w") as fh:
        fh.write(f">{name}\n{seq}\n")
    return path


def test_contig_length_or_name_mismatch_fails_clearly(tmp_path, tiny):
    with pysam.FastaFile(tiny.reference) as fa:
        seq = fa.fetch(tiny.contig)
    short = _write_fasta(str(tmp_path / "short.fa"), tiny.contig, seq[:-10])
    with pytest.raises(InputError, match="bp in the reference"):
        _call(tmp_path, tiny.bam, short)
    renamed = _write_fasta(str(tmp_path / "renamed.fa"), "other", seq)
    with pytest.raises(InputError, match="not in the reference"):
        _call(tmp_path, tiny.bam, renamed)
    assert not os.path.exists(tmp_path / "out.vcf.gz")


def test_empty_region_gives_valid_empty_vcf(tmp_path, na12878):
    out = str(tmp_path / "empty.vcf.gz")
    result = call(na12878.bam, na12878.reference, out, regions=["chr20:30000000-30100000"], workers=2, quiet=True)
    assert result.value.records == 0
    assert _records(out) == []
    assert bcftools.view("-H", out) == ""


def test_skipped_read_classes_do_not_change_calls(tmp_path, tiny, baseline):
    bam = str(tmp_path / "flags.bam")
    with pysam.AlignmentFile(tiny.bam) as src, pysam.AlignmentFile(bam + ".unsorted", "wb", template=src) as dst:
        for i, read in enumerate(src):
            dst.write(read)
            if i % 3 == 0 and not read.is_unmapped:
                for flag in (0x100, 0x200, 0x400, 0x4):
                    junk = pysam.AlignedSegment.fromstring(read.to_string(), src.header)
                    junk.query_name = f"{read.query_name}_{flag}"
                    junk.flag = (read.flag & ~0x2) | flag
                    junk.query_sequence = "G" * read.query_length
                    junk.query_qualities = pysam.qualitystring_to_array("I" * read.query_length)
                    dst.write(junk)
    pysam.sort("-o", bam, bam + ".unsorted")
    assert _call(tmp_path, bam, tiny.reference) == baseline


def _with_read_groups(src_bam: str, bam: str, groups: list[dict]) -> str:
    """Copy of ``src_bam`` whose reads alternate between ``groups``."""
    with pysam.AlignmentFile(src_bam) as src:
        header = src.header.to_dict()
        header["RG"] = groups
        with pysam.AlignmentFile(bam, "wb", header=header) as dst:
            for i, read in enumerate(src):
                seg = pysam.AlignedSegment.fromstring(read.to_string(), dst.header)
                seg.set_tag("RG", groups[i % len(groups)]["ID"])
                dst.write(seg)
    pysam.index(bam)
    return bam


def test_multi_sample_bam_gives_one_column_per_sample(tmp_path, tiny):
    bam = _with_read_groups(tiny.bam, str(tmp_path / "two.bam"),
                            [{"ID": "a", "SM": "alice"}, {"ID": "b", "SM": "bob"}])
    out = str(tmp_path / "two.vcf.gz")
    call(bam, tiny.reference, out, chunks=2, workers=2, quiet=True)
    with pysam.VariantFile(out) as vf:
        assert list(vf.header.samples) == ["alice", "bob"]
        records = list(vf)
    assert records
    for rec in records:
        assert sum(rec.samples[s]["DP"] for s in ("alice", "bob")) == rec.info["DP"] > 0


def test_sample_named_twice_is_refused(tmp_path, tiny):
    with pytest.raises(InputError, match="sample 'sim' is also in"):
        _call(tmp_path, [tiny.bam, tiny.bam], tiny.reference)


def test_several_read_groups_of_one_sample_are_called_together(tmp_path, tiny, baseline):
    bam = _with_read_groups(tiny.bam, str(tmp_path / "lanes.bam"),
                            [{"ID": "lane1", "SM": "sim"}, {"ID": "lane2", "SM": "sim"}])
    assert _call(tmp_path, bam, tiny.reference) == baseline


def test_cli_bad_input_is_one_line_exit_2_without_output(tmp_path, tiny, capsys):
    out = tmp_path / "o.vcf.gz"
    code = main(["genomics", "call", str(tmp_path / "missing.bam"), "--reference", tiny.reference,
                 "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1] == f"cloudbutton: error: {tmp_path / 'missing.bam'}: alignment file not found"
    assert not out.exists()


def test_corrupt_records_are_reported_with_the_file_not_masked_on_close(tmp_path, tiny, capsys):
    """A damaged BGZF block in the middle (the file still ends with its EOF marker, so it passes
    the checks before calling): the failing task names the file and what is wrong."""
    bam = tmp_path / "damaged.bam"
    shutil.copy(tiny.bam, bam)
    shutil.copy(tiny.bam + ".bai", str(bam) + ".bai")
    with open(bam, "r+b") as fh:
        fh.seek(os.path.getsize(bam) // 2)
        fh.write(bytes(2000))
    out = tmp_path / "o.vcf.gz"
    code = main(["genomics", "call", str(bam), "--reference", tiny.reference, "--out", str(out), "--chunks", "2",
                 "--retries", "0", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and not out.exists()
    assert "corrupt or unreadable alignment data" in err[-1] and f"'{bam}'" in err[-1], err[-1]


def test_cli_plan_prints_chunks_and_runs_nothing(tmp_path, na12878, capsys):
    out = tmp_path / "p.vcf.gz"
    code = main(["genomics", "call", na12878.bam, "--reference", na12878.reference, "--out", str(out),
                 "--region", na12878.region, "--chunks", "4", "--plan"])
    text = capsys.readouterr().out
    assert code == 0
    assert "4 chunks in 4 tasks:" in text and "chr20:10000000-" in text
    assert not out.exists()


def test_cli_call_writes_vcf_and_kpis(tmp_path, tiny, baseline):
    out = tmp_path / "c.vcf.gz"
    code = main(["genomics", "call", tiny.bam, "--reference", tiny.reference, "--out", str(out),
                 "--chunks", "2", "--workers", "2", "--quiet"])
    assert code == 0
    assert _records(str(out)) == baseline
    assert (tmp_path / "kpi.json").exists()
    first = gzip.open(out, "rt").read()
    # the header records the calling command, not how it ran: a resumed run on other workers is byte-identical
    assert main(["genomics", "call", tiny.bam, "--reference", tiny.reference, "--out", str(out),
                 "--chunks", "2", "--workers", "1", "--quiet", "--resume"]) == 0
    assert gzip.open(out, "rt").read() == first


def test_output_type_from_name_or_flag(tmp_path, tiny, baseline):
    runs = {"plain.vcf": None, "calls.bcf": None, "flagged.out": "v", "z.vcf.gz": None}
    for name, kind in runs.items():
        out = str(tmp_path / name)
        call(tiny.bam, tiny.reference, out, chunks=2, workers=2, quiet=True, output_type=kind)
        assert _records(out) == baseline
    assert open(tmp_path / "plain.vcf").readline().startswith("##fileformat=VCF")
    assert open(tmp_path / "flagged.out").readline().startswith("##fileformat=VCF")
    with pysam.VariantFile(str(tmp_path / "calls.bcf")) as vf:
        assert vf.is_bcf
    assert (tmp_path / "calls.bcf.csi").exists() and (tmp_path / "z.vcf.gz.tbi").exists()
    assert not (tmp_path / "plain.vcf.tbi").exists()


@pytest.mark.parametrize("kw, path, problem", [
    ({"chunks": 0}, "--chunks", "positive"),
    ({"chunk_size": -5}, "--chunk-size", "positive"),
    ({"out": "calls.txt"}, "calls.txt", "unknown output extension"),
    ({"output_type": "x"}, "out.vcf.gz", "unknown --output-type"),
])
def test_bad_arguments_fail_in_one_line_before_calling(tmp_path, tiny, kw, path, problem):
    out = str(tmp_path / kw.pop("out", "out.vcf.gz"))
    with pytest.raises(InputError, match=problem) as err:
        call(tiny.bam, tiny.reference, out, workers=2, quiet=True, **kw)
    assert err.value.path.endswith(path) and "\n" not in str(err.value)
    assert os.listdir(tmp_path) == []


def test_overlapping_unsorted_regions_are_merged(tmp_path, tiny):
    c = tiny.contig
    whole = str(tmp_path / "whole.vcf.gz")
    call(tiny.bam, tiny.reference, whole, regions=[f"{c}:1-25000"], chunks=2, workers=2, quiet=True)
    parts = str(tmp_path / "parts.vcf.gz")
    call(tiny.bam, tiny.reference, parts, regions=[f"{c}:20001-25000", f"{c}:1-10000", f"{c}:8000-21000"],
         chunks=3, workers=2, quiet=True)
    assert _records(parts) == _records(whole) and len(_records(whole)) > 10


def _bed(path, rows) -> str:
    with open(path, "w") as fh:
        fh.writelines(f"{c}\t{s}\t{e}\n" for c, s, e in rows)
    return str(path)


def test_regions_and_targets_files(tmp_path, tiny, baseline):
    c = tiny.contig
    regions = _bed(tmp_path / "r.bed", [(c, 15000, 30000), (c, 0, 10000)])
    assert _call(tmp_path, tiny.bam, tiny.reference, regions_file=regions) == \
        _call(tmp_path, tiny.bam, tiny.reference, regions=[f"{c}:1-10000", f"{c}:15001-30000"])
    rows = [(c, 2000, 9000), (c, 21000, 26000)]
    targeted = _call(tmp_path, tiny.bam, tiny.reference, targets_file=_bed(tmp_path / "t.bed", rows))
    inside = [r for r in baseline if any(s < int(r.split("\t")[1]) <= e for _, s, e in rows)]
    assert targeted == inside and 0 < len(inside) < len(baseline)
    with pytest.raises(InputError, match="not in the BAM"):
        _call(tmp_path, tiny.bam, tiny.reference, regions_file=_bed(tmp_path / "bad.bed", [("nope", 0, 10)]))


def test_haploid_calls_have_one_allele(tmp_path, tiny, baseline):
    records = _call(tmp_path, tiny.bam, tiny.reference, ploidy="1")
    assert records
    for line in records:
        fields = line.rstrip("\n").split("\t")
        gt, pl = fields[9].split(":")[0], fields[9].split(":")[4]
        assert "/" not in gt and gt != "0"
        assert len(pl.split(",")) == 1 + len(fields[4].split(","))
    hom = {r.split("\t")[1] for r in baseline if "\t1/1:" in r}
    assert hom <= {r.split("\t")[1] for r in records}  # diploid hom-alt sites stay called


def test_packed_small_regions_give_the_same_records(tmp_path, tiny):
    regions = [f"{tiny.contig}:{k * 2500 + 1}-{k * 2500 + 1500}" for k in range(12)]
    packed = call(tiny.bam, tiny.reference, str(tmp_path / "p.vcf.gz"), regions=regions, chunks=3,
                  workers=2, quiet=True)
    alone = call(tiny.bam, tiny.reference, str(tmp_path / "a.vcf.gz"), regions=regions, chunk_size=1500,
                 workers=2, quiet=True)
    assert packed.kpi["stages"][0]["partitions"] < 12 == alone.kpi["stages"][0]["partitions"]
    assert packed.value.chunks == alone.value.chunks == 12
    assert _records(str(tmp_path / "p.vcf.gz")) == _records(str(tmp_path / "a.vcf.gz"))
    assert packed.value.records > 0


def test_gvcf_blocks_tile_the_region_once_whatever_the_chunks(tmp_path, tiny, baseline):
    region = f"{tiny.contig}:1-{tiny.length}"
    runs = {}
    for n in (1, 4):
        out = str(tmp_path / f"g{n}.vcf.gz")
        call(tiny.bam, tiny.reference, out, regions=[region], chunks=n, workers=2, quiet=True, gvcf=True)
        runs[n] = _records(out)
    assert runs[1] == runs[4]
    covered = np.zeros(tiny.length + 2, dtype=np.int64)
    variants = []
    for line in runs[1]:
        f = line.split("\t")
        pos = int(f[1])
        if f[4] == "<*>":
            end = int(f[7].split(";")[0].removeprefix("END="))
            covered[pos:end + 1] += 1
        else:
            variants.append(line)
            covered[pos:pos + len(f[3])] += 10
    assert variants == baseline  # the variant records are unchanged
    blocks_only = covered[1:tiny.length + 1] % 10
    assert blocks_only.max() == 1  # no base in two blocks
    assert (covered[1:tiny.length + 1] > 0).all()  # every base in a block or a record
    assert ((covered[1:tiny.length + 1] >= 10) & (blocks_only > 0)).sum() == 0  # blocks avoid records
