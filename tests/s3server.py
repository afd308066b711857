"""A real S3 server for tests: moto's server mode on 127.0.0.1, a free port, stopped by its PID.

Lithops reaches it through its ``minio`` storage backend (the standard way to
point Lithops at any S3-compatible endpoint); compute stays Lithops localhost.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

#: moto accepts any credentials; these are the ones the config and the helpers use.
ACCESS_KEY = SECRET_KEY = "testing"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class S3Server:
    """A running moto S3 server with one bucket for data and Lithops's scratch.

    Attributes
    ----------
    endpoint : str
        ``http://127.0.0.1:PORT``.
    bucket : str
        The bucket created at start (also the Lithops ``storage_bucket``).
    config_file : Path
        The same Lithops config as YAML, for ``--lithops-config``.
    """

    endpoint: str
    bucket: str
    config_file: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    @property
    def lithops_config(self) -> dict[str, Any]:
        """Lithops localhost compute (v1, this interpreter) with ``minio`` storage on this server."""
        return {
            "lithops": {"backend": "localhost", "storage": "minio", "log_level": "WARNING"},
            "localhost": {"version": 1, "worker_processes": 2, "runtime": sys.executable},
            "minio": {"endpoint": self.endpoint, "access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY,
                      "storage_bucket": self.bucket},
        }

    def client(self) -> Any:
        """A boto3 S3 client on this server (for checks independent of the code under test)."""
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=ACCESS_KEY,
                            aws_secret_access_key=SECRET_KEY, region_name="us-east-1")

    def uri(self, key: str) -> str:
        """``s3://BUCKET/key``."""
        return f"s3://{self.bucket}/{key}"

    def upload(self, path: str | os.PathLike, key: str) -> str:
        """Upload a local file (or every file of a folder, under ``key/``); return its s3:// URI."""
        path = Path(path)
        if path.is_dir():
            for item in sorted(p for p in path.rglob("*") if p.is_file()):
                self.client().upload_file(str(item), self.bucket, f"{key.rstrip('/')}/{item.relative_to(path)}")
            return self.uri(key.rstrip("/") + "/")
        self.client().upload_file(str(path), self.bucket, key)
        return self.uri(key)

    def download(self, key: str, path: str | os.PathLike) -> Path:
        """Download object ``key`` to ``path``."""
        self.client().download_file(self.bucket, key, str(path))
        return Path(path)

    def keys(self, prefix: str = "") -> list[str]:
        """Every key under ``prefix``, sorted."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def stop(self) -> None:
        """Stop the server by its PID."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()


def start_s3_server(folder: Path, bucket: str = "cloudbutton-test", timeout_s: float = 30) -> S3Server:
    """Start ``moto.server`` on 127.0.0.1 on a free port, create ``bucket``, write the Lithops config."""
    port = _free_port()
    log = open(folder / "moto.log", "wb")
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                               stdout=log, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    server = S3Server(endpoint, bucket, folder / "lithops.yaml", process)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            urllib.request.urlopen(endpoint + "/moto-api/", timeout=1).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(f"moto S3 server did not start on {endpoint} (see {folder / 'moto.log'})")
            time.sleep(0.1)
    server.client().create_bucket(Bucket=bucket)
    server.config_file.write_text(yaml.safe_dump(server.lithops_config))
    return server
