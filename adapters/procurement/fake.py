"""A document renderer for tests: records the orders it is asked for, returns a tiny marker document."""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

from adapters.procurement.base import OrderDocument
from adapters.procurement.rules import validate_document


class FakeRenderer:
    media_type = "application/xml"

    def __init__(self) -> None:
        self.rendered: list[OrderDocument] = []

    def render(self, document: OrderDocument) -> bytes:
        validate_document(document)  # same refusals as the real renderers
        self.rendered.append(document)
        return f'<?xml version="1.0" encoding="UTF-8"?>\n<fake-order id={quoteattr(document.order_id)}/>'.encode()
