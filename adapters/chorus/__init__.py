"""Chorus Pro, where French public buyers receive invoices: the port, the fake `broker up` and the tests
use, and the real adapter for the PISTE API."""
