"""Documents a person reads, rendered from plain Structs: the award record (« rapport de présentation
— note de choix ») as PDF. Pure functions of their input, behind the ``RecordRenderer`` Protocol."""

from adapters.documents.base import AwardRecord, RecordRenderer

__all__ = ["AwardRecord", "RecordRenderer"]
