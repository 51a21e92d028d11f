"""An S3-compatible server on loopback (moto's), for the tests of ``s3://`` storage roots.

pyarrow's S3 client talks to it over HTTP exactly as to AWS; the credentials are moto's dummies and
reach the client through the environment, as they would on a node.
"""
from __future__ import annotations

import os
import uuid
from dataclasses import dataclass

import pytest

DUMMY_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@dataclass
class S3Server:
    port: int

    def root(self, prefix: str) -> str:
        """A storage URI on a fresh bucket of this server (created here)."""
        import boto3

        bucket = f"krx-{uuid.uuid4().hex[:10]}"
        boto3.client("s3", endpoint_url=f"http://127.0.0.1:{self.port}", region_name="us-east-1").create_bucket(
            Bucket=bucket)
        return f"s3://{bucket}/{prefix}?endpoint_override=127.0.0.1:{self.port}&scheme=http&region=us-east-1"

    def keys(self, uri: str) -> list[str]:
        """Every object key under a URI made by :meth:`root` (the bucket part dropped)."""
        import boto3

        bucket, _, prefix = uri.split("://", 1)[1].split("?", 1)[0].partition("/")
        client = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{self.port}", region_name="us-east-1")
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server on a free loopback port, stopped at the end of the session."""
    from moto import server as moto_server

    for key, value in DUMMY_ENV.items():
        os.environ.setdefault(key, value)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        yield S3Server(server.get_host_and_port()[1])
    finally:
        server.stop()
