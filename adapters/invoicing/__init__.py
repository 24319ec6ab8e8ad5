"""Invoice documents: Factur-X (CII, EN 16931, in a PDF/A-3) and PEPPOL BIS Billing 3 (UBL 2.1), and the
UBL 2.1 schemas every UBL document the broker writes is validated against."""
