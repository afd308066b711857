"""Remote workers and local paths: refused up front, in one line naming the option to set."""
from __future__ import annotations

import pytest

from cloudbutton.core.cli import main
from cloudbutton.core.errors import InputError
from cloudbutton.core.placement import check_reachable

CLOUD = {"lithops": {"backend": "aws_lambda", "storage": "aws_s3"}}


@pytest.mark.parametrize("out", ["counts.tsv", "/data/counts.tsv"])
def test_a_spark_cluster_refuses_a_local_output(out):
    with pytest.raises(InputError, match=r"^--out: .*Spark master spark://h:7077 cannot write: give an object URI"):
        check_reachable("spark", spark_master="spark://h:7077", lithops_config=None, scratch="s3://b/s",
                        outputs=[out])


def test_a_spark_cluster_needs_a_shared_scratch():
    with pytest.raises(InputError, match=r"^--scratch: intermediates of Spark master spark://h:7077 .*set --scratch"):
        check_reachable("spark", spark_master="spark://h:7077", lithops_config=None, scratch=None,
                        outputs=["s3://b/out.tsv"])
    with pytest.raises(InputError, match=r"^--scratch: /tmp/x is a local path"):
        check_reachable("spark", spark_master="spark://h:7077", lithops_config=None, scratch="/tmp/x",
                        outputs=["s3://b/out.tsv"])
    check_reachable("spark", spark_master="spark://h:7077", lithops_config=None, scratch="file:///nfs/scratch",
                    outputs=["file:///nfs/out.tsv"])


def test_a_cloud_lithops_backend_refuses_local_paths_but_localhost_and_local_spark_do_not():
    with pytest.raises(InputError, match=r"^--out: out/x.tif .*Lithops backend aws_lambda"):
        check_reachable("lithops", spark_master=None, lithops_config=CLOUD, scratch=None, outputs=["out/x.tif"])
    check_reachable("lithops", spark_master=None, lithops_config=CLOUD, scratch=None, outputs=["s3://b/x.tif"])
    check_reachable("lithops", spark_master=None, lithops_config=None, scratch="/tmp/s", outputs=["x.tif"])
    check_reachable("spark", spark_master="local[2]", lithops_config=None, scratch=None, outputs=["x.tif"])


def test_the_cli_refuses_before_any_work(tmp_path, capsys):
    code = main(["demo", "--out", str(tmp_path), "--size-mb", "0.01", "--executor", "spark",
                 "--spark-master", "spark://127.0.0.1:7077"])
    assert code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"cloudbutton: error: --out: {tmp_path}/counts.tsv is a local path that the workers of Spark master "
        "spark://127.0.0.1:7077 cannot write: give an object URI (s3://bucket/...) or file:///path for a folder "
        "every node mounts"]
    assert not (tmp_path / "counts.tsv").exists()
