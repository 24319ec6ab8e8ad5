"""Procurement documents for French public buyers (DOC-1..4): Order-X BASIC (CII) and PEPPOL BIS 3 Order (UBL 2.1).

Pure functions from an ``OrderDocument`` to XML bytes, plus the Chorus Pro reference rules of DOC-3.
"""
