"""Building blocks of the XML documents the broker writes with lxml (Order-X and Factur-X CII, PEPPOL UBL)."""

from __future__ import annotations

from datetime import date

from lxml import etree

from adapters.procurement.base import Address


def sub(parent: etree._Element, ns: str, tag: str, text: str | None = None, **attrib: str) -> etree._Element:
    """A child element ``{ns}tag`` with its attributes and, when given, its text."""
    element = etree.SubElement(parent, f"{{{ns}}}{tag}", attrib)
    if text is not None:
        element.text = text
    return element


def cii_date(parent: etree._Element, tag: str, day: date, *, ram: str, udt: str) -> None:
    """A UN/CEFACT date: ``<ram:tag><udt:DateTimeString format="102">YYYYMMDD</…></…>``."""
    holder = sub(parent, ram, tag)
    sub(holder, udt, "DateTimeString", day.strftime("%Y%m%d"), format="102")


def cii_address(parent: etree._Element, address: Address, *, ram: str) -> None:
    """A UN/CEFACT ``PostalTradeAddress`` in the schema's order (postcode, line, city, country)."""
    postal = sub(parent, ram, "PostalTradeAddress")
    sub(postal, ram, "PostcodeCode", address.postcode)
    if address.line:
        sub(postal, ram, "LineOne", address.line)
    sub(postal, ram, "CityName", address.commune)
    sub(postal, ram, "CountryID", address.country)
