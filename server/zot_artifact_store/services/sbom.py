"""SBOM validation and component extraction: CycloneDX (JSON and XML, 1.4-1.6) validated with
cyclonedx-python-lib against its schemas; SPDX 2.3 JSON parsed and validated with spdx-tools
(the SPDX reference implementation). Invalid documents are refused with the validators' own
reasons.

Validation takes time linear in the document's size (``sbom_validation``: the libraries'
validators with their quadratic lookups replaced) and is CPU work: from the event loop, call
:func:`parse_sbom_async`, which runs it on a worker thread so the server keeps serving."""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET

from .. import jsonbody
from ..errors import StoreError
from .sbom_validation import cyclonedx_json_errors, spdx_messages

# The validators (cyclonedx-python-lib, spdx-tools) are imported when the first SBOM
# arrives: their JSON-schema machinery costs seconds at import, every server start would pay.

CYCLONEDX_JSON = "application/vnd.cyclonedx+json"
CYCLONEDX_XML = "application/vnd.cyclonedx+xml"
SPDX_JSON = "application/spdx+json"
CYCLONEDX_VERSIONS = ("1.4", "1.5", "1.6")
MAX_REASONS = 5
MAX_REASON_CHARS = 400  # a reason quoting a whole array (uniqueItems) is cut in its middle
# SBOM validation gets its own threads: a burst of large SBOMs then waits here instead of
# taking the default executor's threads from blob and metadata I/O.
VALIDATION_THREADS = 2
_executor: ThreadPoolExecutor | None = None


@dataclass
class Component:
    name: str
    version: str = ""
    purl: str = ""
    licenses: list[str] = field(default_factory=list)


@dataclass
class ParsedSbom:
    format: str  # "cyclonedx" | "spdx"
    media_type: str
    spec_version: str
    components: list[Component]


def purl_base(purl: str) -> str:
    """``pkg:pypi/requests@2.31.0?x=y#sub`` → ``pkg:pypi/requests``."""
    base = purl.split("#", 1)[0].split("?", 1)[0]
    head, _, last = base.rpartition("/")
    if "@" in last:
        last = last.split("@", 1)[0]
    return f"{head}/{last}" if head else last


def _short(reason: str) -> str:
    if len(reason) <= MAX_REASON_CHARS:
        return reason
    half = MAX_REASON_CHARS // 2
    return f"{reason[:half]} … {reason[-half:]}"


def invalid(reasons: list[str]) -> StoreError:
    shown = "; ".join(_short(r) for r in reasons[:MAX_REASONS])
    more = f" (and {len(reasons) - MAX_REASONS} more)" if len(reasons) > MAX_REASONS else ""
    return StoreError("InvalidEvidence", f"the SBOM is invalid: {shown}{more}")


async def parse_sbom_async(body: bytes, media_type: str) -> ParsedSbom:
    """:func:`parse_sbom` on a worker thread: the event loop keeps serving while a large SBOM
    is validated."""
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(VALIDATION_THREADS, thread_name_prefix="sbom-validation")
    return await asyncio.get_running_loop().run_in_executor(_executor, parse_sbom, body, media_type)


def parse_sbom(body: bytes, media_type: str) -> ParsedSbom:
    """Validate and read an SBOM; :class:`StoreError` ``InvalidEvidence`` with the validators'
    reasons when it is not a valid CycloneDX 1.4-1.6 or SPDX 2.3 document. CPU-bound and
    synchronous: from the event loop use :func:`parse_sbom_async`."""
    try:
        return _parse_sbom(body, media_type)
    except RecursionError:
        raise invalid(["the document is nested too deeply"]) from None


def _parse_sbom(body: bytes, media_type: str) -> ParsedSbom:
    text = body.decode("utf-8", errors="replace")
    if media_type == CYCLONEDX_XML or (
        not media_type.endswith("json") and text.lstrip().startswith("<")
    ):
        return _cyclonedx_xml(text)
    try:
        doc = jsonbody.loads(text)
    except jsonbody.JSONTooDeep as exc:
        raise invalid([f"the document is nested too deeply: {exc}"]) from None
    except ValueError as exc:
        raise invalid([f"not JSON: {exc}"]) from None
    if not isinstance(doc, dict):
        raise invalid(["the document is not a JSON object"])
    if doc.get("bomFormat") == "CycloneDX":
        return _cyclonedx_json(doc)
    if "spdxVersion" in doc:
        return _spdx_json(doc)
    raise invalid(["neither CycloneDX (bomFormat) nor SPDX (spdxVersion)"])


def _schema(version: str) -> Any:
    from cyclonedx.schema import SchemaVersion

    if version not in CYCLONEDX_VERSIONS:
        raise invalid([f"CycloneDX {version!r} is not supported (1.4, 1.5, 1.6)"])
    return SchemaVersion.from_version(version)


def _cyclonedx_json(doc: dict[str, Any]) -> ParsedSbom:
    version = str(doc.get("specVersion", ""))
    # The library's strict JSON validator (JsonStrictValidator), with a linear uniqueItems.
    errors = cyclonedx_json_errors(doc, _schema(version))
    if errors:
        raise invalid(errors)
    components: list[Component] = []

    def walk(items: Any) -> None:
        for c in items or []:
            licenses = []
            for entry in c.get("licenses") or []:
                lic = entry.get("license") or {}
                value = lic.get("id") or lic.get("name") or entry.get("expression")
                if value:
                    licenses.append(str(value))
            components.append(
                Component(
                    str(c.get("name", "")),
                    str(c.get("version", "")),
                    str(c.get("purl", "")),
                    licenses,
                )
            )
            walk(c.get("components"))

    walk(doc.get("components"))
    return ParsedSbom("cyclonedx", CYCLONEDX_JSON, version, components)


def _cyclonedx_xml(text: str) -> ParsedSbom:
    from cyclonedx.validation.xml import XmlValidator

    try:
        root: Element = SafeET.fromstring(text)
    except Exception as exc:  # defusedxml raises several types
        raise invalid([f"not XML: {exc}"]) from None
    match = re.fullmatch(r"\{http://cyclonedx\.org/schema/bom/([\d.]+)\}bom", root.tag)
    if match is None:
        raise invalid(["the root element is not a CycloneDX <bom>"])
    version = match.group(1)
    errors = XmlValidator(_schema(version)).validate_str(text, all_errors=True)
    if errors:
        raise invalid([str(getattr(e, "data", e)).splitlines()[0] for e in errors])  # type: ignore[union-attr]
    ns = {"c": f"http://cyclonedx.org/schema/bom/{version}"}
    components = []
    for c in root.iter(f"{{{ns['c']}}}component"):
        licenses = [
            (lic.findtext("c:id", namespaces=ns) or lic.findtext("c:name", namespaces=ns) or "")
            for lic in c.findall("c:licenses/c:license", ns)
        ] + [e.text or "" for e in c.findall("c:licenses/c:expression", ns)]
        components.append(
            Component(
                c.findtext("c:name", default="", namespaces=ns),
                c.findtext("c:version", default="", namespaces=ns),
                c.findtext("c:purl", default="", namespaces=ns),
                [x for x in licenses if x],
            )
        )
    return ParsedSbom("cyclonedx", CYCLONEDX_XML, version, components)


def _spdx_json(doc: dict[str, Any]) -> ParsedSbom:
    from spdx_tools.spdx.parser.error import SPDXParsingError
    from spdx_tools.spdx.parser.jsonlikedict.json_like_dict_parser import JsonLikeDictParser

    if doc.get("spdxVersion") != "SPDX-2.3":
        raise invalid([f"spdxVersion {doc.get('spdxVersion')!r} is not supported (SPDX-2.3)"])
    try:
        document = JsonLikeDictParser().parse(doc)
    except SPDXParsingError as exc:
        raise invalid([str(m) for m in exc.get_messages()]) from None
    messages = spdx_messages(document, "SPDX-2.3")  # validate_full_spdx_document, indexed
    if messages:
        raise invalid([m.validation_message for m in messages])
    components = []
    for package in doc.get("packages") or []:
        purl = next(
            (
                str(ref.get("referenceLocator", ""))
                for ref in package.get("externalRefs") or []
                if ref.get("referenceType") == "purl"
            ),
            "",
        )
        licenses = [
            str(package[k])
            for k in ("licenseConcluded", "licenseDeclared")
            if package.get(k) and package[k] not in ("NOASSERTION", "NONE")
        ]
        components.append(
            Component(
                str(package.get("name", "")),
                str(package.get("versionInfo", "")),
                purl,
                sorted(set(licenses)),
            )
        )
    return ParsedSbom("spdx", SPDX_JSON, "SPDX-2.3", components)
