"""Session-wide fixtures shared by every test layer."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from tests.fixtures.mongo import MongoServer, external_uri
from tests.fixtures.objectstores import (
    AzureEndpoint,
    GcsEndpoint,
    S3Endpoint,
    start_azurite,
    start_gcs_emulator,
    start_moto,
    start_zas,
)

# Property-based tests (tests/unit/test_prop_*.py). `make test` runs the "ci" profile:
# derandomized (the examples follow from each test's source, so a run is reproducible and
# its duration stable on a shared machine) with no example database (a clean CI clone has none
# to replay, and one inside the worktree would change what later runs try). `HYPOTHESIS_PROFILE=
# explore` searches further with fresh randomness and remembers failures in .hypothesis/
# (git-ignored), to be turned into explicit @example cases.
settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    max_examples=60,
    deadline=None,  # two cores shared with other jobs: wall-clock deadlines would flake
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "explore", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def mongodb_base_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A MongoDB URI without a database; tests add their own database name."""
    uri = external_uri()
    if uri:
        yield uri
        return
    server = MongoServer(tmp_path_factory.mktemp("mongodb")).start()
    try:
        yield server.uri
    finally:
        server.stop()


@pytest.fixture(scope="session")
def moto_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Endpoint]:
    """moto's S3 server mode on loopback, with bucket ``zas-blobs``."""
    server, endpoint = start_moto(tmp_path_factory.mktemp("moto"))
    try:
        yield endpoint
    finally:
        server.stop()


@pytest.fixture(scope="session")
def zas_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Endpoint]:
    """A second Zot Artifact Store (filesystem backend) as an S3 server, bucket ``zas-blobs``."""
    server, endpoint = start_zas(tmp_path_factory.mktemp("zas-s3"))
    try:
        yield endpoint
    finally:
        server.stop()


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzureEndpoint]:
    """Azurite's blob service on loopback, with container ``zas-blobs``."""
    server, endpoint = start_azurite(tmp_path_factory.mktemp("azurite"))
    try:
        yield endpoint
    finally:
        server.stop()


@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcsEndpoint]:
    """gcp-storage-emulator on loopback (in memory); tests create their own buckets."""
    server, endpoint = start_gcs_emulator(tmp_path_factory.mktemp("gcs"))
    try:
        yield endpoint
    finally:
        server.stop()
