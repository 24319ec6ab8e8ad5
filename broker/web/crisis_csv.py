"""Delivery points from a spreadsheet, and a call's points and commitments back to one.

Import: one point a line, ``nom ; commune ; quantité ; priorité`` (« ; » or « , » between fields,
UTF-8 with or without a byte order mark, an optional header line, the priority optional: 3; more
columns are ignored, so an exported file reads back). The commune is read as the form's commune
field reads it (name, postcode, INSEE code, ``Nom (département)``). Every line is checked and every
error reported, in French, by line: the caller creates nothing unless there is none.

Export: UTF-8 with a byte order mark and « ; » between fields (what a French Excel opens as is),
French headers, numbers as a French spreadsheet reads them."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from adapters.geocoding.base import Geocoder
from adapters.geocoding.lookup import commune_label
from broker.domain.crisis import MAX_QUANTITY, Commitment, DeliveryPoint
from broker.domain.fabrication import Workshop
from broker.web.forms import Form
from broker.web.labels import PARIS, number
from broker.web.map import coverage

MAX_ROWS = 5000  # the API's limit for one call
PRIORITIES = ["1", "2", "3", "4", "5"]
DEFAULT_PRIORITY = "3"
COLUMNS = ("nom du point", "commune", "quantité", "priorité")
COVERAGE = {"covered": "couvert", "proposed": "proposé, en attente de réponse", "short": "non couvert"}


def decode(data: bytes) -> str | None:
    """The file's text (UTF-8, its byte order mark dropped), or None if it is not UTF-8."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None


def _delimiter(text: str) -> str:
    first = next((line for line in text.splitlines() if line.strip()), "")
    return ";" if ";" in first or "," not in first else ","


def _is_header(cells: list[str]) -> bool:
    """A first line naming the columns rather than a point (its quantity is not a number)."""
    quantity = cells[2].replace(" ", "").replace("\u00a0", "").replace("\u202f", "") if len(cells) > 2 else ""
    return not quantity.isdigit() and any(w in c.casefold() for c in cells for w in ("commune", "quantit"))


def read_points(text: str, geocoder: Geocoder) -> tuple[list[dict[str, Any]], list[str]]:
    """The points of the file (as the form's rows give them: ``label``, ``commune_insee``,
    ``quantity``, ``priority``) and the French errors found, one per faulty field, by line."""
    text = text.removeprefix("\ufeff")
    rows = list(csv.reader(io.StringIO(text), delimiter=_delimiter(text)))
    errors: list[str] = []
    points: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    start = 1 if rows and _is_header([c.strip() for c in rows[0]]) else 0
    lines = [(n, [c.strip() for c in cells]) for n, cells in enumerate(rows, start=1) if n > start]
    lines = [(n, cells) for n, cells in lines if any(cells)]
    if not lines:
        return [], ["Le fichier ne contient aucun point de livraison : une ligne par point, « nom ; commune ; "
                    "quantité ; priorité »."]
    if len(lines) > MAX_ROWS:
        return [], [f"{number(MAX_ROWS)} points au plus par appel ({number(len(lines))} lignes dans le fichier)."]
    for n, cells in lines:
        if len(cells) < 3:
            errors.append(f"Ligne {n} : {len(cells)} colonne(s) au lieu de 3 ou 4 (nom ; commune ; quantité ; "
                          "priorité) — vérifiez le séparateur, « ; » ou « , ».")
            continue
        priority = cells[3] if len(cells) > 3 and cells[3] else DEFAULT_PRIORITY
        row = Form({"label": cells[0], "commune": cells[1], "quantite": cells[2], "priorite": priority})
        label = row.text("label", max_length=200)
        insee = row.commune("commune", geocoder)
        quantity = row.integer("quantite", low=1, high=MAX_QUANTITY)
        row.choice("priorite", PRIORITIES)
        for field, column in zip(("label", "commune", "quantite", "priorite"), COLUMNS, strict=True):
            if field in row.errors:
                errors.append(f"Ligne {n}, {column} : {_message(row, field, geocoder)}")
        if label is not None:
            key = label.casefold()
            if key in seen:
                errors.append(f"Ligne {n}, nom du point : « {label} » figure déjà ligne {seen[key]} ; chaque point "
                              "porte un nom différent.")
            seen.setdefault(key, n)
        if row.ok and label is not None and insee is not None and quantity is not None:
            points.append({"label": label, "commune_insee": insee, "quantity": quantity, "priority": int(priority)})
    return points, errors


def _message(row: Form, field: str, geocoder: Geocoder) -> str:
    """The form's message, except for a commune naming several: a file has no buttons to choose
    with, so it says how to write the one meant."""
    choices = row.choices.get(field)
    if not choices:
        return row.errors[field]
    first = geocoder.commune(choices[0][0])
    example = f", par exemple « {commune_label(first)} »" if first else ""
    shown = " ; ".join(text for _insee, text in choices[:3]) + (" ; …" if len(choices) > 3 else "")
    return (f"« {row.raw(field)} » désigne plusieurs communes ({shown}) : écrivez le nom suivi du département"
            f"{example}, ou le code suivi du nom.")


def _when(value: datetime | None) -> str:
    return value.astimezone(PARIS).strftime("%d/%m/%Y %H:%M") if value else ""


def _table(headers: Iterable[str], rows: Iterable[Iterable[object]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";")
    writer.writerow(headers)
    writer.writerows(rows)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


POINT_HEADERS = ("Nom du point", "Commune", "Quantité demandée", "Priorité", "Code INSEE", "Engagée", "Acceptée",
                 "Fabriquée", "Livrée", "Non couverte", "État")


def points_csv(points: Iterable[DeliveryPoint], per_point: Mapping[str, Mapping[str, int]],
               geocoder: Geocoder) -> bytes:
    """The call's delivery points and where each stands (its first four columns read back as an import)."""
    rows = []
    for p in points:
        t = per_point[p.id]
        commune = geocoder.commune(p.commune_insee)
        state = coverage(requested=p.quantity, committed=t["committed"], accepted=t["accepted"])
        rows.append((p.label, commune_label(commune) if commune else p.commune_insee, p.quantity, p.priority,
                     p.commune_insee, t["committed"], t["accepted"], t["produced"], t["delivered"], t["unmet"],
                     COVERAGE[state]))
    return _table(POINT_HEADERS, rows)


COMMITMENT_HEADERS = ("Atelier", "Commune de l'atelier", "Point de livraison", "Quantité", "Distance (km)", "État",
                      "Proposé le", "Réponse attendue avant", "Décidé le", "Motif du refus", "Fabriquées", "Livrées",
                      "Dernier avancement le")


def commitments_csv(commitments: Iterable[Commitment], *, workshops: Mapping[str, Workshop],
                    points: Mapping[str, DeliveryPoint], statuses: Mapping[str, str], geocoder: Geocoder) -> bytes:
    """Every commitment of the call, by workshop: its status, the reason of a decline and the last
    progress its maker reported."""
    rows = []
    for c in sorted(commitments, key=lambda c: (workshops[c.workshop_id].name if c.workshop_id in workshops else "",
                                                c.created_at, c.id)):
        shop = workshops.get(c.workshop_id)
        commune = geocoder.commune(shop.commune_insee) if shop else None
        point = points.get(c.delivery_point_id)
        rows.append((shop.name if shop else "", commune_label(commune) if commune else "",
                     point.label if point else "", c.quantity, f"{c.distance_km:.1f}".replace(".", ","),
                     statuses.get(c.status, c.status), _when(c.created_at), _when(c.expires_at),
                     _when(c.decided_at or c.accepted_at), c.decline_reason or "", c.produced, c.delivered,
                     _when(c.last_report_at)))
    return _table(COMMITMENT_HEADERS, rows)
