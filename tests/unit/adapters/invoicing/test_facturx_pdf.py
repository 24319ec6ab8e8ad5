"""The Factur-X PDF: the EN 16931 XML read back from the PDF/A-3, and the French text a person reads."""

from __future__ import annotations

import io

import facturx
import pytest
from invoicing_samples import (
    BUYER_SIRET,
    ENGAGEMENT,
    SAFE_PARSER,
    SERVICE_CODE,
    credit_note,
    franchise_invoice,
    invoice,
)
from lxml import etree
from pypdf import PdfReader

from adapters.invoicing.base import DocumentInvalid
from adapters.invoicing.facturx_pdf import FacturXPdfRenderer

RAM = {"ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"}


@pytest.fixture(scope="module")
def pdfs() -> dict[str, bytes]:
    renderer = FacturXPdfRenderer()
    return {"invoice": renderer.render(invoice()), "credit_note": renderer.render(credit_note()),
            "franchise": renderer.render(franchise_invoice())}


def _text(pdf: bytes) -> str:
    """The PDF's text, no-break spaces read as spaces (pypdf does not keep them apart with a subset font)."""
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    return text.replace("\u00a0", " ")


@pytest.mark.parametrize("name", ["invoice", "credit_note", "franchise"])
def test_the_embedded_xml_is_en16931_with_the_buyer_and_the_engagement(pdfs: dict[str, bytes], name: str) -> None:
    filename, xml = facturx.get_xml_from_pdf(pdfs[name], check_xsd=True)
    assert filename == "factur-x.xml"
    root = etree.fromstring(xml, SAFE_PARSER)
    assert facturx.get_flavor(root) == "factur-x"
    assert facturx.get_level(root) == "en16931"
    assert root.xpath("//ram:BuyerTradeParty/ram:GlobalID[@schemeID='0009']/text()", namespaces=RAM) == [BUYER_SIRET]
    assert root.xpath("//ram:BuyerOrderReferencedDocument/ram:IssuerAssignedID/text()", namespaces=RAM) == [
        ENGAGEMENT]


def test_pdfa3_structure(pdfs: dict[str, bytes]) -> None:
    reader = PdfReader(io.BytesIO(pdfs["invoice"]))
    catalog = reader.trailer["/Root"]
    assert reader.pdf_header == "%PDF-1.7"
    xmp = catalog["/Metadata"].get_object().get_data()
    assert b"<pdfaid:part>3</pdfaid:part>" in xmp
    assert b"EN 16931" in xmp
    intent = catalog["/OutputIntents"][0].get_object()
    assert intent["/S"] == "/GTS_PDFA1"
    assert intent["/DestOutputProfile"].get_object()["/N"] == 3
    assert catalog["/AF"][0].get_object()["/AFRelationship"] == "/Data"
    assert catalog["/Lang"] == "fr-FR"
    fonts = [font.get_object() for font in reader.pages[0]["/Resources"]["/Font"].values()]
    assert fonts
    assert all("/FontFile2" in font["/FontDescriptor"] for font in fonts)  # every font is embedded
    info = reader.metadata
    assert info is not None
    assert info.title == "Fab Lab des Champs Libres : Facture F-000042"
    assert "/Keywords" not in info


def test_the_invoice_reads_in_french(pdfs: dict[str, bytes]) -> None:
    text = _text(pdfs["invoice"])
    for expected in ("Facture n° F-000042", "20 juin 2025", "Commune de Rennes", f"SIRET : {BUYER_SIRET}",
                     ENGAGEMENT, SERVICE_CODE, "Panneau de signalétique en bois gravé", "907,00 €",
                     "181,40 €", "1 088,40 €", "TVA 20 %", "Date d'échéance : 20 juillet 2025",
                     "R.2192-10", "FR7630006000011234567890189", "N° TVA intracommunautaire : FR19812345676"):
        assert expected in text, expected
    assert "293 B" not in text


def test_the_credit_note_reads_as_an_avoir(pdfs: dict[str, bytes]) -> None:
    text = _text(pdfs["credit_note"])
    assert "Avoir n° AV-000003" in text
    assert "Avoir sur la facture n° F-000042 du 20 juin 2025" in text
    assert "Montant de l'avoir" in text
    assert "234,00 €" in text


def test_the_franchise_invoice_carries_the_293_b_mention(pdfs: dict[str, bytes]) -> None:
    text = _text(pdfs["franchise"])
    assert "Facture" in text
    assert "F-000007" in text
    assert "TVA non applicable, art. 293 B du CGI" in text
    assert "930,00 €" in text
    assert "N° TVA intracommunautaire" not in text


def test_a_broken_document_raises() -> None:
    with pytest.raises(DocumentInvalid, match="BR-02"):
        FacturXPdfRenderer().render(invoice(number=""))


def test_media_type() -> None:
    assert FacturXPdfRenderer.media_type == "application/pdf"
