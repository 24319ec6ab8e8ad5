"""What the maker's pages read and say beyond one field: the machine form (a process and materials
picked from lists, by their French names, sent as the engine's identifiers), the warnings of a quote
being written (late or partial, from `broker.domain.award_rules.quote_flags`, the rule the buyer's
award applies) and the quotes' CSV export."""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec

from broker.api.schemas import MachineIn
from broker.domain.award_rules import LATE, PARTIAL, quote_flags
from broker.domain.catalogue import CatalogueItem, Process
from broker.domain.fabrication import Machine, MaterialLimit, Request
from broker.domain.lifecycle import QuoteStatus
from broker.domain.procurement import paris_day
from broker.services.maker_quotes import MakerQuote
from broker.web.forms import Form
from broker.web.labels import MATERIAL, PROCESS, QUOTE_FLAG, QUOTE_STATUS, cents, day, number
from broker.web.labels import moment as moment_text

MACHINE_FIELDS = {"/process": "procede", "/envelope_mm": "enveloppe_x", "/envelope_mm/0": "enveloppe_x",
                  "/envelope_mm/1": "enveloppe_y", "/envelope_mm/2": "enveloppe_z", "/materials": "materiaux",
                  "/hours_per_week": "heures", "code:workshop-profile-missing": "__all__"}
AXES = "xyz"
#: The processes a machine may do: the engine's (`Process`), by their French names.
PROCESSES = {process.value: PROCESS.get(process.value, process.value) for process in Process}


# ---- machines --------------------------------------------------------------------------------------

def _sort_key(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in folded if not unicodedata.combining(ch))


def material_options(items: Sequence[CatalogueItem], machines: Sequence[Machine] = ()) -> dict[str, str]:
    """The materials a machine may declare, identifier -> French name (capitalised), by name: those
    the interface names, those the catalogue's steps ask for (matching compares identifiers), and
    those ``machines`` already declare (an identifier typed before the list existed stays removable)."""
    keys = set(MATERIAL) | {step.material for item in items for step in item.steps}
    keys |= {limit.material for machine in machines for limit in machine.materials}
    names = {key: MATERIAL.get(key, key) for key in keys}
    return {key: text[0].upper() + text[1:]
            for key, text in sorted(names.items(), key=lambda kv: (_sort_key(kv[1]), kv[0]))}


def _decimal_text(value: float) -> str:
    return f"{value:g}".replace(".", ",")


def machine_values(machine: Machine) -> dict[str, str]:
    """The machine form filled with what ``machine`` is (to edit it)."""
    values = {"procede": machine.process, "heures": _decimal_text(machine.hours_per_week)}
    values |= {f"enveloppe_{axis}": _decimal_text(v) for axis, v in zip(AXES, machine.envelope_mm, strict=True)}
    for limit in machine.materials:
        values[f"materiau_{limit.material}"] = "on"
        values[f"epaisseur_{limit.material}"] = _decimal_text(limit.max_thickness_mm)
    return values


def read_machine(form: Form, options: Mapping[str, str]) -> MachineIn | None:
    """The machine posted: a process of the list, an envelope, each material ticked with its maximum
    thickness, hours per week; the API's own Struct (same bounds as ``/v1``), or None with the errors
    on the form. A thickness typed for a material left unticked is an error, never silently dropped."""
    process = form.choice("procede", PROCESSES)
    envelope = [form.decimal(f"enveloppe_{axis}", low=Decimal(0), high=Decimal(20_000), places=1, strict_low=True)
                for axis in AXES]
    materials = []
    for key, name in options.items():
        ticked, typed = form.checked(f"materiau_{key}"), form.raw(f"epaisseur_{key}")
        if not ticked and not typed:
            continue
        if not ticked:
            form.error(f"epaisseur_{key}", f"Cochez « {name} » ou effacez cette épaisseur.")
        elif not typed:
            form.error(f"epaisseur_{key}", f"Indiquez l'épaisseur maximale pour « {name} ».")
        elif (thickness := form.decimal(f"epaisseur_{key}", low=Decimal(0), high=Decimal(500), places=1,
                                        strict_low=True)) is not None:
            materials.append({"material": key, "max_thickness_mm": float(thickness)})
    if not materials and not any(name.startswith("epaisseur_") for name in form.errors):
        form.error("materiaux", "Cochez au moins un matériau et indiquez son épaisseur maximale.")
    hours = form.decimal("heures", low=Decimal(0), high=Decimal(168), places=1)
    if not form.ok:
        return None
    return form.convert({"process": process, "envelope_mm": [float(v or 0) for v in envelope],
                         "materials": materials, "hours_per_week": float(hours or 0)}, MachineIn, MACHINE_FIELDS)


def limits(body: MachineIn) -> list[MaterialLimit]:
    return [MaterialLimit(material=m.material, max_thickness_mm=m.max_thickness_mm) for m in body.materials]


def envelope(body: MachineIn) -> tuple[float, float, float]:
    return body.envelope_mm[0], body.envelope_mm[1], body.envelope_mm[2]


# ---- a quote being written ---------------------------------------------------------------------------

class QuoteWarning(msgspec.Struct, frozen=True, kw_only=True):
    """A reason the buyer may not (or not simply) retain the quote: its flag, its badge, a sentence."""

    flag: str
    badge: str
    text: str


def late_text(promised: str, deadline: date) -> str:
    return (f"livraison après l'échéance demandée : promise le {promised}, attendue au plus tard le {day(deadline)}. "
            "L'acheteur ne pourra retenir ce devis qu'en justifiant son choix.")


def partial_text(quantity: str, request: Request) -> str:
    then = ("la demande accepte les devis partiels : l'acheteur complétera auprès d'autres ateliers."
            if request.allow_split else "cette demande n'est pas fractionnable : chiffrez la totalité.")
    return f"devis partiel : {quantity} sur {number(request.quantity)} unités demandées ; {then}"


def quote_warnings(request: Request, *, quantity: int | None, delivery: date | None,
                   now: datetime) -> list[QuoteWarning]:
    """What the buyer's award rules will flag on this quote (`quote_flags`), told to the maker before
    it is sent. « Partial » here is any quantity below the request's: a request that may be split
    accepts it (the maker is told all the same), one that may not refuses it on submission."""
    flags = quote_flags(status=QuoteStatus.SUBMITTED, valid_until=now + timedelta(days=1),
                        delivery_date=delivery or paris_day(request.deadline),
                        quantity=quantity or request.quantity, request_quantity=request.quantity,
                        request_deadline=request.deadline, allow_split=False, now=now)
    found = []
    if LATE in flags and delivery is not None:
        found.append(QuoteWarning(flag=LATE, badge=QUOTE_FLAG[LATE], text=late_text(day(delivery),
                                                                                    paris_day(request.deadline))))
    if PARTIAL in flags and quantity is not None:
        found.append(QuoteWarning(flag=PARTIAL, badge=QUOTE_FLAG[PARTIAL], text=partial_text(number(quantity),
                                                                                             request)))
    return found


def typed_warnings(form: Form, request: Request, now: datetime) -> list[QuoteWarning]:
    """`quote_warnings` of what the form holds, read quietly (its own errors are the form's business)."""
    scratch = Form(dict(form.values))
    quantity = scratch.integer("quantite", low=1, high=10_000_000)
    delivery = scratch.day("livraison")
    return quote_warnings(request, quantity=quantity, delivery=delivery, now=now)


def confirmation(warnings: Sequence[QuoteWarning], form: Form) -> str:
    """What the maker confirms by sending again: the warnings and the values they were about."""
    if not warnings:
        return ""
    return f"{'+'.join(w.flag for w in warnings)}/{form.raw('quantite')}/{form.raw('livraison')}"


def live_data(request: Request) -> dict[str, Any]:
    """What ``static/app.js`` needs to say the same warnings as the maker types (the sentences with a
    ``{livraison}``/``{quantite}`` hole, the deadline and the quantity requested)."""
    deadline = paris_day(request.deadline)
    return {"deadline": deadline.isoformat(), "requested": request.quantity,
            "late_badge": QUOTE_FLAG[LATE], "late_text": late_text("{livraison}", deadline),
            "partial_badge": QUOTE_FLAG[PARTIAL], "partial_text": partial_text("{quantite}", request)}


# ---- the quotes' CSV export -----------------------------------------------------------------------------

CSV_HEADERS = ("Envoyé le", "Demande", "Quantité proposée", "Quantité demandée", "Prix unitaire HT",
               "Taux de TVA", "Livraison promise", "Échéance demandée", "Valable jusqu'au", "Statut",
               "Signalements")


def _plain(text: str) -> str:
    """No narrow no-break spaces in a spreadsheet cell (they break its number parsing)."""
    return text.replace("\u202f", " ")


def quotes_csv(rows: Iterable[MakerQuote]) -> bytes:
    """UTF-8 with a byte order mark (Excel then reads the accents), « ; » between fields (a French
    Excel's separator), French headers; amounts and dates as a person reads them."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";")
    writer.writerow(CSV_HEADERS)
    for row in rows:
        q, r = row.quote, row.request
        writer.writerow((
            _plain(moment_text(q.created_at)), r.name, q.quantity, r.quantity, _plain(cents(q.unit_price_cents)),
            _plain(f"{number(Decimal(q.vat_rate_bp) / 100, 1 if q.vat_rate_bp % 100 else 0)} %"),
            day(q.delivery_date), day(r.deadline), day(q.valid_until),
            QUOTE_STATUS.get(q.status, q.status), ", ".join(QUOTE_FLAG.get(f, f) for f in row.flags),
        ))
    return ("\ufeff" + out.getvalue()).encode("utf-8")
