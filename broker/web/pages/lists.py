"""What the web lists share (a buyer's requests, the orders): the search box and filters read from
the address, the sort (``?tri=colonne``, ``?tri=-colonne`` for descending), the signed cursors of
the next pages, and the CSV export of every row the filters keep (``?format=csv``).

A cursor is made for one search, filters and sort (their fingerprint is in it, signed): changing
any of them starts again from the first page. It carries the last row's sort value and id (as JSON,
in the id slot of the API's cursor codec, whose first slot only orders by creation)."""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

import msgspec
from litestar import Response
from litestar.datastructures import FormMultiDict
from litestar.params import QueryParameter

from adapters.geocoding.base import Geocoder
from broker.api.context import RequestContext
from broker.api.pagination import InvalidCursor
from broker.domain.listing import ListQuery, Position
from broker.web.forms import Form
from broker.web.labels import PARIS, number, paris

#: The CSV export stops at this many rows and says so on its last line.
EXPORT_CAP = 10_000
PAGE = 50
ListCursor = Annotated[str | None, QueryParameter(name="curseur", max_length=2048)]
# What the address may say (an unknown parameter is refused: each is declared by the list's handler).
Search = Annotated[str | None, QueryParameter(name="recherche", max_length=200)]
StatusParam = Annotated[str | None, QueryParameter(name="etat", max_length=20)]
DatedParam = Annotated[str | None, QueryParameter(name="dates", max_length=20)]
Since = Annotated[str | None, QueryParameter(name="du", max_length=20)]
Until = Annotated[str | None, QueryParameter(name="au", max_length=20)]
CommuneParam = Annotated[str | None, QueryParameter(name="commune", max_length=200)]
CommuneChoice = Annotated[str | None, QueryParameter(name="commune_choix", max_length=10)]
SortParam = Annotated[str | None, QueryParameter(name="tri", max_length=30)]
Export = Annotated[Literal["csv"] | None, QueryParameter(name="format")]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: What the address may say, beside the cursor and the format (kept by every link of the list).
FIELDS = ("recherche", "etat", "dates", "du", "au", "commune", "commune_choix", "tri")
DATES = {"creation": "Date de création", "echeance": "Date limite"}


class ListView:
    """One list as the person asked for it: the filter form (with its errors), the query for the
    service, the sort, and the links that keep them."""

    def __init__(self, name: str, params: Mapping[str, str | None], *, export: bool, sorts: Mapping[str, str],
                 statuses: Mapping[str, str], geocoder: Geocoder, default_sort: str = "-creation") -> None:
        self.name, self.sorts, self.csv = name, sorts, export
        self.form = form = Form(FormMultiDict([(k, v) for k, v in params.items() if k in FIELDS and v]))
        typed = form.raw("tri") or default_sort
        if typed.removeprefix("-") not in sorts:
            typed = default_sort
        self.sort, self.descending = typed.removeprefix("-"), typed.startswith("-")
        text = form.text("recherche", required=False, max_length=100)
        status = form.choice("etat", statuses, required=False)
        dated = form.choice("dates", DATES, required=False) or "creation"
        since, until = form.day("du", required=False), form.day("au", required=False)
        if since and until and until < since:
            form.error("au", "La fin de la période doit suivre son début.")
        commune = form.commune("commune", geocoder) if form.raw("commune") else None
        self.filtered = any(form.raw(k) for k in ("recherche", "etat", "du", "au", "commune"))
        self.query = None if not form.ok else ListQuery(
            text=text, status=status, dated="created" if dated == "creation" else "deadline",
            since=_start_of(since) if since else None, until=_start_of(until + timedelta(days=1)) if until else None,
            commune=commune, sort=sorts[self.sort], descending=self.descending,
        )
        # The fingerprint of what the rows depend on: a cursor is valid for it alone.
        canonical = "|".join([name, typed, text or "", status or "", dated, str(since), str(until), commune or ""])
        self.fingerprint = f"web-{name}:" + hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def href(self, **changes: str | None) -> str:
        """This list's address with ``changes`` (None drops a field); never a cursor: a new search
        or sort starts from the first page."""
        values = {k: self.form.raw(k) for k in FIELDS if self.form.raw(k)}
        if "commune" in values:  # the commune as resolved (« Rennes (35) »), the pick no longer needed
            values.pop("commune_choix", None)
        for key, value in changes.items():
            if value is None:
                values.pop(key, None)
            else:
                values[key] = value
        return "?" + urlencode(values) if values else "?"

    def header(self, label: str, key: str) -> dict[str, str]:
        """A sortable column's heading: its link (the other direction when it is the sort) and its
        ``aria-sort``."""
        current = self.sort == key
        descending = not self.descending if current else key == "creation"
        return {"label": label, "href": self.href(tri=("-" if descending else "") + key),
                "aria": ("descending" if self.descending else "ascending") if current else "none",
                "arrow": ("▼" if self.descending else "▲") if current else ""}

    def after(self, ctx: RequestContext, cursor: str | None) -> Position | None:
        if not cursor:
            return None
        _at, blob = ctx.runtime.cursors.decode(cursor, filters=self.fingerprint)
        try:
            value, row_id = msgspec.json.decode(blob, type=tuple[str | int | float, str])
        except msgspec.DecodeError as exc:
            raise InvalidCursor("the cursor is not one this list issued") from exc
        return value, row_id

    def page(self, ctx: RequestContext, rows: Sequence[Any]) -> tuple[list[Any], str | None]:
        """The first ``PAGE`` of ``rows`` (read with one more) and the next page's address, if any."""
        if len(rows) <= PAGE:
            return list(rows), None
        kept = list(rows[:PAGE])
        position = msgspec.json.encode(list(kept[-1].position)).decode()
        cursor = ctx.runtime.cursors.encode((_EPOCH, position), filters=self.fingerprint)
        return kept, self.href(curseur=cursor)

    def export(self, filename: str, headers: Sequence[str], rows: Iterable[Sequence[str]], *,
               capped: bool) -> Response[bytes]:
        """The rows as a spreadsheet opens them in France: UTF-8 with BOM, « ; » between cells."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
        writer.writerow(headers)
        writer.writerows(rows)
        if capped:
            writer.writerow([f"Export limité aux {number(EXPORT_CAP)} premières lignes : précisez les filtres "
                             "pour obtenir les suivantes."])
        return Response(("\ufeff" + buffer.getvalue()).encode(), media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="{filename}-{datetime.now(PARIS):%Y%m%d}.csv"',
            "Cache-Control": "no-store"})


def _start_of(day: date) -> datetime:
    """The first instant of ``day`` in Paris."""
    return datetime.combine(day, time(0, 0), tzinfo=PARIS).astimezone(UTC)


def csv_day(value: date | datetime) -> str:
    """``31/12/2026`` (a datetime on its Paris calendar day)."""
    day = paris(value).date() if isinstance(value, datetime) else value
    return f"{day:%d/%m/%Y}"


def csv_cents(value: int) -> str:
    """An amount in cents as a French spreadsheet reads a number: ``1234,50``."""
    return f"{Decimal(value) / 100:.2f}".replace(".", ",")
