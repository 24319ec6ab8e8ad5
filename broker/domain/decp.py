"""DECP: the données essentielles de la commande publique of an award, in the official form.

Every contract at or above the publication threshold (`BROKER_DECP_THRESHOLD_EUR_HT`, 40 000 € HT by
default: article R.2196-1 of the code de la commande publique and the arrêté du 22 décembre 2022) is
published on the portail national des données ouvertes (data.gouv.fr; a profil d'acheteur usually
transmits it) within two months of its notification (`procurement.decp_deadline`). For the broker, one
award is one marché: the request is its object, the buyer its acheteur, the workshops of the orders
it created its titulaires. `build_marche` writes it in the JSON form of the official schema 2.0.3
(`data/decp/schema_decp_v2.0.3.json.gz`; its XML form, schema 2.0.2, is the same tree, see
`broker.services.decp.marches_xml`). Pure: no I/O, no clock.

Each value is what the broker knows to be true of the contract, never a guess:

- ``id``: the notification year and 12 characters derived from the request's id (a hash, in base 32):
  unique per buyer and year as the schema asks (16 characters at most, none of the characters it
  asks to avoid), and the same whenever it is built again.
- ``nature``: ``Marché`` (never a partnership nor a defence contract); ``techniques``: ``Sans objet``
  (no framework agreement, competition, dynamic system, catalogue nor auction) and
  ``modalitesExecution``: ``Sans objet`` (a single order: no tranches, no purchase orders under a
  framework, no subsequent contracts).
- ``procedure``: the request's procedure, as the schema names it: ``sans_publicite`` → « Marché
  passé sans publicité ni mise en concurrence préalable », ``mapa`` and ``mapa_publicite`` →
  « Procédure adaptée ». The broker runs no formalised procedure (refused when the request is created).
- ``codeCPV``: the request's CPV, its 8 digits without the check digit (as the schema recommends).
- ``lieuExecution``: the delivery commune, by its INSEE code (``Code commune``, which the schema
  prefers to the postcode).
- ``dureeMois``: whole months, rounded up, from the notification to the last date the work may end
  (the request's deadline, or a later delivery date a justified award accepted); at least 1.
- ``dateNotification``: the day of the award in Paris: the broker notifies the workshops at once
  (``quote.accepted``, ``order.created``).
- ``datePublicationDonnees`` (required): the day the broker made the data available to the buyer
  until the buyer says when it published them (`mark_published`), then that day.
- ``montant``: the awarded total HT in euros (every order of the award); ``formePrix``: ``Unitaire``
  (a unit price HT times the quantity ordered, invoiced on the units delivered); ``typesPrix``:
  ``Définitif ferme`` (the quoted price neither varies nor is revised).
- ``titulaires``: the SIRET of each winning workshop's organisation, once each, in the orders'
  order; ``typeGroupementOperateurs``: ``Pas de groupement`` (each workshop quoted alone, even when
  the award is split between several).
- ``offresRecues``: the quotes received for the request, withdrawn ones excepted (the schema counts
  irregular or unacceptable offers too: late, partial and expired quotes are counted).
- ``ccag``: ``Pas de CCAG`` (the broker's orders refer to no cahier des clauses administratives
  générales); ``marcheInnovant``: false; ``attributionAvance``: false (the broker pays no advance;
  ``tauxAvance`` is then omitted); ``sousTraitanceDeclaree``: false (a quote declares no
  subcontractor); ``considerationsSociales`` and ``considerationsEnvironnementales``: « Pas de
  considération … » (the award compares prices and deadlines; distance orders the invitations only).
- ``origineUE`` and ``origineFrance`` are omitted: the broker does not know where the materials come
  from, and the arrêté asks for them only for food, vehicles, health products and clothing.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import date, datetime
from typing import Annotated, Literal

import msgspec

from broker.domain.procurement import Procedure

__all__ = [
    "PROCEDURE_NAMES",
    "DecpRecord",
    "IsoDate",
    "Marche",
    "Marches",
    "MarchesDocument",
    "build_marche",
    "duration_months",
    "marche_id",
    "published",
]

#: A date as ``date.isoformat()`` writes it (``2026-05-04``).
IsoDate = Annotated[str, msgspec.Meta(extra_json_schema={"format": "date"})]

ProcedureName = Literal[
    "Procédure adaptée",
    "Appel d'offres ouvert",
    "Appel d'offres restreint",
    "Procédure avec négociation",
    "Marché passé sans publicité ni mise en concurrence préalable",
    "Dialogue compétitif",
]

#: The schema's name of each procedure the broker runs.
PROCEDURE_NAMES: dict[Procedure, ProcedureName] = {
    Procedure.SANS_PUBLICITE: "Marché passé sans publicité ni mise en concurrence préalable",
    Procedure.MAPA: "Procédure adaptée",
    Procedure.MAPA_PUBLICITE: "Procédure adaptée",
}

IdentifierType = Literal["SIRET", "TVA", "TAHITI", "RIDET", "FRWF", "IREP", "HORS-UE"]
Technique = Literal[
    "Accord-cadre", "Concours", "Système de qualification", "Système d'acquisition dynamique",
    "Catalogue électronique", "Enchère électronique", "Sans objet",
]
ModaliteExecution = Literal["Tranches", "Bons de commande", "Marchés subséquents", "Sans objet"]
ConsiderationSociale = Literal["Clause sociale", "Critère social", "Marché réservé", "Pas de considération sociale"]
ConsiderationEnvironnementale = Literal[
    "Clause environnementale", "Critère environnemental", "Pas de considération environnementale",
]
TypePrix = Literal["Définitif ferme", "Définitif actualisable", "Définitif révisable", "Provisoire"]
Ccag = Literal[
    "Travaux", "Maitrise d'œuvre", "Fournitures courantes et services", "Marchés industriels",
    "Prestations intellectuelles", "Techniques de l'information et de la communication", "Pas de CCAG",
]
PlaceCodeType = Literal[
    "Code postal", "Code commune", "Code arrondissement", "Code canton", "Code département", "Code région",
    "Code pays",
]


class _Official(msgspec.Struct, frozen=True, kw_only=True, rename="camel", forbid_unknown_fields=True):
    """A part of the official form: the schema's names (camelCase), nothing else."""


class Acheteur(_Official, frozen=True, kw_only=True):
    id: str  # the SIRET of the buyer


class LieuExecution(_Official, frozen=True, kw_only=True):
    code: str
    type_code: PlaceCodeType


class Titulaire(_Official, frozen=True, kw_only=True):
    id: str
    type_identifiant: IdentifierType


class TitulaireEntry(_Official, frozen=True, kw_only=True):
    titulaire: Titulaire


class Techniques(_Official, frozen=True, kw_only=True):
    technique: list[Technique]


class ModalitesExecution(_Official, frozen=True, kw_only=True):
    modalite_execution: list[ModaliteExecution]


class ConsiderationsSociales(_Official, frozen=True, kw_only=True):
    consideration_sociale: list[ConsiderationSociale]


class ConsiderationsEnvironnementales(_Official, frozen=True, kw_only=True):
    consideration_environnementale: list[ConsiderationEnvironnementale]


class TypesPrix(_Official, frozen=True, kw_only=True):
    type_prix: list[TypePrix]


class Marche(_Official, frozen=True, kw_only=True):
    """One marché in the official JSON form of the DECP (schema 2.0.3); the choice behind each
    value is in this module's docstring."""

    id: str
    acheteur: Acheteur
    nature: Literal["Marché", "Marché de partenariat", "Marché de défense ou de sécurité"]
    objet: str
    code_cpv: str = msgspec.field(name="codeCPV")
    techniques: Techniques
    modalites_execution: ModalitesExecution
    marche_innovant: bool
    ccag: Ccag
    offres_recues: int
    attribution_avance: bool
    type_groupement_operateurs: Literal["Conjoint", "Solidaire", "Pas de groupement"]
    sous_traitance_declaree: bool
    procedure: ProcedureName
    lieu_execution: LieuExecution
    duree_mois: int
    date_notification: IsoDate
    date_publication_donnees: IsoDate
    montant: float
    types_prix: TypesPrix
    forme_prix: Literal["Unitaire", "Forfaitaire", "Mixte"]
    titulaires: list[TitulaireEntry]
    considerations_sociales: ConsiderationsSociales
    considerations_environnementales: ConsiderationsEnvironnementales


class Marches(msgspec.Struct, frozen=True, kw_only=True):
    marche: list[Marche]


class MarchesDocument(msgspec.Struct, frozen=True, kw_only=True):
    """The official envelope: ``{"marches": {"marche": [...]}}``."""

    marches: Marches


class DecpRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A DECP record as the broker keeps it: the marché, whose buyer organisation and request it
    comes from, and its publication state (due by ``due_on``; ``published_at`` once the buyer
    said it is published)."""

    id: str  # the marché's id
    org_id: str
    request_id: str
    year: int
    amount_cents: int
    notified_on: date
    due_on: date
    published_at: datetime | None
    marche: Marche
    created_at: datetime


_ID_CHARS = 12  # + the 4 digits of the year: the schema's 16 characters at most


def marche_id(request_id: str, year: int) -> str:
    """``2026`` and 12 base-32 characters (60 bits) of the SHA-256 of the request id."""
    digest = base64.b32encode(hashlib.sha256(request_id.encode()).digest()).decode()
    return f"{year:04d}{digest[:_ID_CHARS]}"


def duration_months(start: date, end: date) -> int:
    """Whole months from ``start`` to ``end``, a started month counting as one; at least 1."""
    months = (end.year - start.year) * 12 + (end.month - start.month) + (1 if end.day > start.day else 0)
    return max(months, 1)


def _euros(cents: int) -> float:
    """An amount for the schema's ``number``: whole euros as an integer, else with its cents."""
    return cents // 100 if cents % 100 == 0 else cents / 100


def _objet(name: str, quantity: int) -> str:
    units = "1 unité" if quantity == 1 else f"{quantity:,} unités".replace(",", "\u202f")
    return f"{name.strip()}\u00a0: {units}"[:1000]


def build_marche(
    *,
    request_id: str,
    buyer_siret: str,
    name: str,
    quantity: int,
    cpv: str,
    procedure: Procedure,
    delivery_insee: str,
    notified_on: date,
    ends_on: date,
    amount_cents: int,
    titulaire_sirets: list[str],
    offers_received: int,
) -> Marche:
    """The marché of an award (see the module's docstring for each value). Raises ValueError for a
    procedure the broker does not run, or an award without titulaire."""
    if procedure not in PROCEDURE_NAMES:
        raise ValueError(f"the broker runs no {procedure.value} procedure")
    sirets = list(dict.fromkeys(titulaire_sirets))
    if not sirets:
        raise ValueError("an award has at least one titulaire")
    day = notified_on.isoformat()
    return Marche(
        id=marche_id(request_id, notified_on.year),
        acheteur=Acheteur(id=buyer_siret),
        nature="Marché",
        objet=_objet(name, quantity),
        code_cpv=cpv[:8],
        techniques=Techniques(technique=["Sans objet"]),
        modalites_execution=ModalitesExecution(modalite_execution=["Sans objet"]),
        marche_innovant=False,
        ccag="Pas de CCAG",
        offres_recues=max(offers_received, 1),
        attribution_avance=False,
        type_groupement_operateurs="Pas de groupement",
        sous_traitance_declaree=False,
        procedure=PROCEDURE_NAMES[procedure],
        lieu_execution=LieuExecution(code=delivery_insee, type_code="Code commune"),
        duree_mois=duration_months(notified_on, max(ends_on, notified_on)),
        date_notification=day,
        date_publication_donnees=day,
        montant=_euros(amount_cents),
        types_prix=TypesPrix(type_prix=["Définitif ferme"]),
        forme_prix="Unitaire",
        titulaires=[TitulaireEntry(titulaire=Titulaire(id=s, type_identifiant="SIRET")) for s in sirets],
        considerations_sociales=ConsiderationsSociales(consideration_sociale=["Pas de considération sociale"]),
        considerations_environnementales=ConsiderationsEnvironnementales(
            consideration_environnementale=["Pas de considération environnementale"]),
    )


def published(marche: Marche, on: date) -> Marche:
    """The marché once the buyer published it on ``on`` (its ``datePublicationDonnees``)."""
    return msgspec.structs.replace(marche, date_publication_donnees=on.isoformat())
