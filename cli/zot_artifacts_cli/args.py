"""Argument parsing the commands share: object references, subjects, documents, policies,
labels and secrets read from stdin."""

from __future__ import annotations

import codecs
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import yaml

from zot_artifacts import (
    Subject,
)

from .config import one_line
from .context import (
    F,
    Failure,
)

# ---- arguments ------------------------------------------------------------------------------


def split_ref(ref: str, need_key: bool = True) -> tuple[str, str]:
    """``bucket/key`` -> (bucket, key)."""
    bucket, _, key = ref.partition("/")
    if not bucket or (need_key and not key):
        raise click.BadParameter(f"{ref!r} is not BUCKET/KEY", param_hint="BUCKET/KEY")
    return bucket, key


def pick_subject(ref: str | None, image: str | None, digest: str | None) -> Subject:
    given = [x for x in (ref, image, digest) if x]
    if len(given) != 1:
        raise click.UsageError("name the subject once: BUCKET/KEY, --image REPO@DIGEST or --digest")
    if image:
        repository, sep, image_digest = image.rpartition("@")
        if not sep or not repository or not image_digest:
            raise click.BadParameter(
                f"{image!r} is not REPOSITORY@sha256:...", param_hint="--image"
            )
        return Subject.image(repository, image_digest)
    if digest:
        return Subject.digest(digest)
    assert ref is not None
    return Subject.object(*split_ref(ref))


def subject_options(func: F) -> F:
    func = click.option(
        "--digest", metavar="sha256:HEX", help="The subject is this digest (any content)."
    )(func)
    func = click.option(
        "--image", metavar="REPO@DIGEST", help="The subject is this OCI image manifest."
    )(func)
    return func


class _DocumentLoader(yaml.SafeLoader):
    """YAML as JSON sees it: ``released: 2024-01-01`` stays the text it was written as
    (YAML 1.1 would make it a date, which no JSON request can carry)."""


_DocumentLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_document(path: str) -> Any:
    """A JSON or YAML file (``-`` = stdin), UTF-8 (a UTF-8 or UTF-16 byte-order mark is
    honoured, as PowerShell writes one)."""
    try:
        raw = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
        if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            text = raw.decode("utf-16")
        else:
            text = raw.decode("utf-8-sig")
        return yaml.load(text, Loader=_DocumentLoader)  # a SafeLoader
    except OSError as exc:
        raise Failure(f"{path}: cannot read: {one_line(exc)}") from None
    except UnicodeDecodeError as exc:
        raise Failure(f"{path}: not UTF-8 or UTF-16 text: {one_line(exc)}") from None
    except yaml.YAMLError as exc:
        raise Failure(f"{path}: not JSON or YAML: {one_line(exc)}") from None


def load_policy(path: str) -> dict[str, Any]:
    policy = load_document(path)
    if not isinstance(policy, dict):
        raise Failure(f"{path}: a policy is a mapping (signatures, sbom, ...)")
    return policy


def policy_option(name: str) -> Callable[[F], F]:
    return click.option(
        name,
        "policy_file",
        required=True,
        type=click.Path(exists=True, dir_okay=False, allow_dash=True),
        help="The policy, JSON or YAML (- = stdin): signatures, threshold, sbom, attestations.",
    )


def labels_option(func: F) -> F:
    return click.option(
        "--label", "labels", multiple=True, metavar="K=V", help="A label (repeatable)."
    )(func)


def parse_labels(items: tuple[str, ...]) -> dict[str, str] | None:
    labels = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--label")
        labels[key] = value
    return labels or None


def read_secret(what: str) -> str:
    value = sys.stdin.readline().rstrip("\r\n")
    if not value:
        raise click.UsageError(f"{what} expected on stdin, got nothing")
    return value
