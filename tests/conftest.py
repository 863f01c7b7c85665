"""Session-wide fixtures shared by every test layer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fixtures.mongo import MongoServer, external_uri


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
