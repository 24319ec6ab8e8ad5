"""The OASIS UBL 2.1 schemas (Invoice, CreditNote, Order, OrderResponse), served from the project's own archive.

``data/ubl-2.1.zip`` holds the official "runtime" XSDs unchanged (``maindoc/`` and the ``common/`` modules they
import; © OASIS Open 2013, see ``data/UBL-2.1-NOTICE.md``), so validation needs neither the network nor any file
outside the package. The schema documents are parsed without network access nor entity expansion, and every
``xsd:import``/``xsd:include`` is answered from the archive by an lxml resolver under a private URL scheme: a
location the archive lacks fails instead of reaching the file system or the network.

Compiling a schema parses the whole common library (about 0.1 s here), so each document type is compiled once
and kept. lxml writes a schema's error log on the schema object itself: validations hold a lock so
that concurrent callers never read each other's errors."""

from __future__ import annotations

import threading
import zipfile
from functools import cache
from pathlib import Path
from typing import Literal

from lxml import etree

UblDocument = Literal["Invoice", "CreditNote", "Order", "OrderResponse"]

ARCHIVE = Path(__file__).parent / "data" / "ubl-2.1.zip"
_SCHEME = "ubl-2.1"
_LOCK = threading.Lock()


class _ArchiveResolver(etree.Resolver):  # type: ignore[misc]  # lxml is untyped (Any) here
    """Answers the ``ubl-2.1:///…`` locations of the schema imports from the archive's members."""

    def __init__(self, members: dict[str, bytes]) -> None:
        super().__init__()
        self._members = members

    def resolve(self, system_url: str | None, public_id: str | None, context: object) -> object:
        prefix = f"{_SCHEME}:///"
        if system_url is None or not system_url.startswith(prefix):
            return None
        data = self._members.get(system_url.removeprefix(prefix))
        if data is None:
            return None
        return self.resolve_string(data, context, base_url=system_url)


@cache
def _members() -> dict[str, bytes]:
    with zipfile.ZipFile(ARCHIVE) as archive:
        return {name: archive.read(name) for name in archive.namelist() if name.endswith(".xsd")}


@cache
def schema(document: UblDocument) -> etree.XMLSchema:
    """The compiled OASIS schema of ``document`` (compiled on first use, then cached)."""
    members = _members()
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    parser.resolvers.add(_ArchiveResolver(members))
    name = f"maindoc/UBL-{document}-2.1.xsd"
    root = etree.fromstring(members[name], parser, base_url=f"{_SCHEME}:///{name}")
    return etree.XMLSchema(root)


_DOCUMENT_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def validate_ubl(xml: bytes, document: UblDocument) -> list[str]:
    """The schema errors of ``xml`` as a UBL 2.1 ``document`` (``line N: message``), empty when it is valid.

    A root element other than ``document`` in the UBL namespace is itself reported, as is XML that does not
    parse or declares a DOCTYPE (UBL has none; its entities would stay unexpanded, which lxml cannot
    validate). The PEPPOL and EN 16931 business rules (schematron) are not checked here."""
    try:
        root = etree.fromstring(xml, _DOCUMENT_PARSER)
    except etree.XMLSyntaxError as error:
        return [f"not well-formed XML: {error}"]
    if root.getroottree().docinfo.doctype:
        return ["a UBL document has no DOCTYPE"]
    compiled = schema(document)
    with _LOCK:
        if compiled.validate(root):
            return []
        return [f"line {entry.line}: {entry.message}" for entry in compiled.error_log]
