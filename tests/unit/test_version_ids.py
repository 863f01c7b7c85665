"""Version ids are safe on a command line: awscli took a version id that began with ``-`` for
an option (``--version-id -d8Ya…`` → "expected one argument"), which failed a CI run. Ids are
letters and digits; ids made before (URL-safe base64 with ``-`` and ``_``) stay accepted."""

from __future__ import annotations

import pytest

from zot_artifact_store.errors import StoreError
from zot_artifact_store.services.versioning import new_version_id, stored_version_id


def test_new_version_ids_are_letters_and_digits_and_accepted_back() -> None:
    ids = {new_version_id() for _ in range(5000)}
    assert len(ids) == 5000
    for version_id in ids:
        assert len(version_id) == 32 and version_id.isascii() and version_id.isalnum()
        assert stored_version_id(version_id) == version_id


def test_version_ids_made_by_earlier_releases_stay_valid() -> None:
    old = "-d8Ya8BdgpcEnJQq80W0n2gzNh5hGWrO"
    assert stored_version_id(old) == old
    assert stored_version_id("null") == ""


@pytest.mark.parametrize("bad", ["", "x" * 31, "x" * 33, "a/" + "b" * 30, "../" + "c" * 29])
def test_ids_this_store_cannot_have_made_are_invalid_argument(bad: str) -> None:
    with pytest.raises(StoreError) as caught:
        stored_version_id(bad)
    assert caught.value.code == "InvalidArgument"
