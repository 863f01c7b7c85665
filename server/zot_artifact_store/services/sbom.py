"""SBOM validation and component extraction: CycloneDX (JSON and XML, 1.4-1.6) validated with
cyclonedx-python-lib against its schemas; SPDX 2.3 JSON parsed and validated with spdx-tools
(the SPDX reference implementation). Invalid documents are refused with the validators' own
reasons."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET

from ..errors import StoreError

# The validators (cyclonedx-python-lib, spdx-tools) are imported when the first SBOM
# arrives: their JSON-schema machinery costs seconds at import, every server start would pay.

CYCLONEDX_JSON = "application/vnd.cyclonedx+json"
CYCLONEDX_XML = "application/vnd.cyclonedx+xml"
SPDX_JSON = "application/spdx+json"
CYCLONEDX_VERSIONS = ("1.4", "1.5", "1.6")
MAX_REASONS = 5


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


def invalid(reasons: list[str]) -> StoreError:
    shown = "; ".join(reasons[:MAX_REASONS])
    more = f" (and {len(reasons) - MAX_REASONS} more)" if len(reasons) > MAX_REASONS else ""
    return StoreError("InvalidEvidence", f"the SBOM is invalid: {shown}{more}")


def parse_sbom(body: bytes, media_type: str) -> ParsedSbom:
    text = body.decode("utf-8", errors="replace")
    if media_type == CYCLONEDX_XML or (
        not media_type.endswith("json") and text.lstrip().startswith("<")
    ):
        return _cyclonedx_xml(text)
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise invalid([f"not JSON: {exc}"]) from None
    if not isinstance(doc, dict):
        raise invalid(["the document is not a JSON object"])
    if doc.get("bomFormat") == "CycloneDX":
        return _cyclonedx_json(text, doc)
    if "spdxVersion" in doc:
        return _spdx_json(doc)
    raise invalid(["neither CycloneDX (bomFormat) nor SPDX (spdxVersion)"])


def _schema(version: str) -> Any:
    from cyclonedx.schema import SchemaVersion

    if version not in CYCLONEDX_VERSIONS:
        raise invalid([f"CycloneDX {version!r} is not supported (1.4, 1.5, 1.6)"])
    return SchemaVersion.from_version(version)


def _cyclonedx_json(text: str, doc: dict[str, Any]) -> ParsedSbom:
    from cyclonedx.validation.json import JsonStrictValidator

    version = str(doc.get("specVersion", ""))
    errors = JsonStrictValidator(_schema(version)).validate_str(text, all_errors=True)
    if errors:
        raise invalid([str(getattr(e, "data", e)).splitlines()[0] for e in errors])  # type: ignore[union-attr]
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
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    if doc.get("spdxVersion") != "SPDX-2.3":
        raise invalid([f"spdxVersion {doc.get('spdxVersion')!r} is not supported (SPDX-2.3)"])
    try:
        document = JsonLikeDictParser().parse(doc)
    except SPDXParsingError as exc:
        raise invalid([str(m) for m in exc.get_messages()]) from None
    messages = validate_full_spdx_document(document, "SPDX-2.3")
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
