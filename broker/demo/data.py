"""The demo's cast: about a hundred workshops in real communes, three collectivités, a coordinator,
and the delivery points of a visor crisis call in Grand Est.

Everything here is deterministic. Communes are real (INSEE COG codes, checked against the shipped
commune table by the tests); the collectivités are real EPCI with their real SIREN; the workshops
are invented but plausible, their SIRETs derived from their names and Luhn-valid (SIREN and SIRET).
Trades and machines follow what the Manufactures de proximité network and the fab labs of 2020
actually had: wood CNC routers, laser cutters, FDM printer farms, sewing workshops holding the
AFNOR Spec S76-001 mask certification, metal shops.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from broker.domain.identifiers import luhn_ok


def _luhn_complete(digits: str) -> str:
    """``digits`` followed by the check digit that makes the whole pass Luhn."""
    for d in "0123456789":
        if luhn_ok(digits + d):
            return digits + d
    raise AssertionError("unreachable: one digit always completes a Luhn number")


def siret_for_siren(siren: str, *, first_nic: int = 1) -> str:
    """The first Luhn-valid SIRET of ``siren`` from establishment number ``first_nic`` on (NIC = 4 digits + key)."""
    if not luhn_ok(siren):
        raise ValueError(f"{siren} is not a valid SIREN")
    for nic in range(first_nic, 10_000):
        siret = siren + f"{nic:04d}"
        completed = _luhn_complete(siret)
        if luhn_ok(completed):
            return completed
    raise AssertionError("unreachable")


def siret_from_name(name: str) -> str:
    """A deterministic, Luhn-valid SIRET for an invented company: SIREN from a hash of its name
    (first digit 4–9, like private companies and associations), head office NIC 0001x."""
    digest = int(hashlib.sha256(name.encode("utf-8")).hexdigest(), 16)
    body = f"{4 + digest % 6}{(digest // 6) % 10**7:07d}"
    return siret_for_siren(_luhn_complete(body))


class Kind(StrEnum):
    WOOD = "wood"  # menuiserie / ébénisterie with a CNC router
    FAB_LAB = "fab_lab"  # laser cutter + FDM printers
    MIXED = "mixed"  # manufacture de proximité / tiers-lieu: wood CNC + laser + FDM
    PRINT_FARM = "print_farm"  # many FDM printers, no laser
    SEWING = "sewing"  # couture / confection, AFNOR Spec S76-001
    METAL = "metal"  # métallerie: fibre laser, press brake, welding


@dataclass(frozen=True)
class WorkshopSeed:
    name: str
    insee: str
    kind: Kind
    size: float = 1.0  # scales machine hours and declared capacities (a small atelier is 0.6, a big one 1.6)

    @property
    def siret(self) -> str:
        return siret_from_name(self.name)


W, F, M, P, S, X = Kind.WOOD, Kind.FAB_LAB, Kind.MIXED, Kind.PRINT_FARM, Kind.SEWING, Kind.METAL

# Grand Est: the crisis region, densest (as it was in March 2020).
GRAND_EST: tuple[WorkshopSeed, ...] = (
    WorkshopSeed("FabLab de Strasbourg-Neudorf", "67482", F, 1.4),
    WorkshopSeed("La Manufacture du Port du Rhin", "67482", M, 1.6),
    WorkshopSeed("Makerspace d'Illkirch-Graffenstaden", "67218", F, 1.0),
    WorkshopSeed("FabLab de Haguenau", "67180", F, 0.9),
    WorkshopSeed("Atelier numérique de Saverne", "67437", F, 0.7),
    WorkshopSeed("FabLab d'Obernai", "67348", F, 0.8),
    WorkshopSeed("Tiers-lieu La Fabrique, Sélestat", "67462", M, 1.0),
    WorkshopSeed("Fab lab du Val de Villé", "67507", F, 0.6),
    WorkshopSeed("FabLab de Mulhouse", "68224", F, 1.3),
    WorkshopSeed("Manufacture de proximité de Mulhouse-Fonderie", "68224", M, 1.5),
    WorkshopSeed("FabLab de Colmar", "68066", F, 1.1),
    WorkshopSeed("Le Garage numérique, Guebwiller", "68112", F, 0.8),
    WorkshopSeed("Fab lab des Trois Frontières, Saint-Louis", "68297", F, 0.9),
    WorkshopSeed("Fab lab du Sundgau, Altkirch", "68004", F, 0.7),
    WorkshopSeed("Atelier partagé d'Ungersheim", "68343", M, 0.7),
    WorkshopSeed("Fab lab de la vallée de Munster", "68226", F, 0.6),
    WorkshopSeed("FabLab de Metz", "57463", F, 1.3),
    WorkshopSeed("Manufacture de proximité de Thionville", "57672", M, 1.1),
    WorkshopSeed("Fab lab de Sarreguemines", "57631", F, 0.8),
    WorkshopSeed("FabLab de Nancy", "54395", F, 1.3),
    WorkshopSeed("Lorraine Fab, Vandœuvre-lès-Nancy", "54547", F, 1.0),
    WorkshopSeed("FabLab de Lunéville", "54329", F, 0.7),
    WorkshopSeed("FabLab d'Épinal", "88160", F, 0.9),
    WorkshopSeed("Fab lab de Saint-Dié-des-Vosges", "88413", F, 0.8),
    WorkshopSeed("Fab lab des Hautes-Vosges, Gérardmer", "88196", F, 0.6),
    WorkshopSeed("FabLab de Reims", "51454", F, 1.2),
    WorkshopSeed("Fab lab de Troyes", "10387", F, 1.0),
    WorkshopSeed("FabLab de Charleville-Mézières", "08105", F, 0.8),
    WorkshopSeed("Impression 3D Alsace, Colmar", "68066", P, 1.2),
    WorkshopSeed("Ferme d'impression 3D de Thann", "68334", P, 0.8),
    WorkshopSeed("Menuiserie du Val d'Argent, Sainte-Marie-aux-Mines", "68298", W, 0.8),
    WorkshopSeed("Atelier bois de la Bruche, Schirmeck", "67448", W, 0.7),
    WorkshopSeed("Scierie-menuiserie de Bussang", "88081", W, 0.9),
    WorkshopSeed("Ébénisterie de Dabo", "57163", W, 0.6),
    WorkshopSeed("Atelier de couture de Sarrebourg", "57630", S, 0.8),
    WorkshopSeed("Confection vosgienne, Remiremont", "88383", S, 1.4),
    WorkshopSeed("Atelier textile de Senones", "88451", S, 0.7),
    WorkshopSeed("Les Petites Mains de Bar-le-Duc", "55029", S, 0.8),
    WorkshopSeed("Métallerie de Forbach", "57227", X, 1.0),
    WorkshopSeed("Chaudronnerie de Saint-Dizier", "52448", X, 1.2),
)

# The rest of France: a Limousin / Massif central cluster (where the desk is delivered), then everywhere.
ELSEWHERE: tuple[WorkshopSeed, ...] = (
    WorkshopSeed("Atelier bois de la Vallée, Felletin", "23079", W, 0.9),
    WorkshopSeed("Menuiserie du Plateau de Millevaches", "23090", W, 0.6),
    WorkshopSeed("Les Ateliers du Bois de Guéret", "23096", W, 1.1),
    WorkshopSeed("Ébénisterie de Bourganeuf", "23030", W, 0.7),
    WorkshopSeed("Menuiserie d'Eymoutiers", "87064", W, 0.8),
    WorkshopSeed("Manufacture de proximité de Limoges", "87085", M, 1.4),
    WorkshopSeed("FabLab de Limoges", "87085", F, 1.0),
    WorkshopSeed("Atelier bois de Treignac", "19269", W, 0.7),
    WorkshopSeed("Menuiserie d'Ussel", "19275", W, 0.9),
    WorkshopSeed("FabLab de Tulle", "19272", F, 0.7),
    WorkshopSeed("Atelier de couture de Saint-Junien", "87154", S, 1.0),
    WorkshopSeed("Agencement bois de Montluçon", "03185", W, 1.2),
    WorkshopSeed("Manufacture de Clermont-Ferrand", "63113", M, 1.3),
    WorkshopSeed("Menuiserie de Thiers", "63430", W, 0.9),
    WorkshopSeed("Atelier de couture d'Ambert", "63003", S, 0.8),
    WorkshopSeed("Métallerie de Riom", "63300", X, 1.0),
    WorkshopSeed("Menuiserie des Combrailles, Pontgibaud", "63285", W, 0.6),
    WorkshopSeed("Atelier bois d'Aurillac", "15014", W, 1.0),
    WorkshopSeed("FabLab de Lannion", "22113", F, 1.0),
    WorkshopSeed("Atelier bois du Trégor, Trémargat", "22365", W, 0.5),
    WorkshopSeed("FabLab de Brest", "29019", F, 1.2),
    WorkshopSeed("Menuiserie de Rennes", "35238", W, 1.3),
    WorkshopSeed("Atelier de couture de Fougères", "35115", S, 0.9),
    WorkshopSeed("Makerspace de Quimper", "29232", F, 0.9),
    WorkshopSeed("Atelier textile de Douarnenez", "29046", S, 0.7),
    WorkshopSeed("Menuiserie de Pontivy", "56178", W, 0.8),
    WorkshopSeed("Manufacture de proximité de Nantes", "44109", M, 1.5),
    WorkshopSeed("Métallerie d'Angers", "49007", X, 1.1),
    WorkshopSeed("Atelier bois de Laval", "53130", W, 0.9),
    WorkshopSeed("FabLab d'Orléans", "45234", F, 1.0),
    WorkshopSeed("Atelier de couture de Romorantin", "41194", S, 0.8),
    WorkshopSeed("Menuiserie de Loches", "37132", W, 0.7),
    WorkshopSeed("Atelier bois de Saint-Amand-Montrond", "18197", W, 0.8),
    WorkshopSeed("FabLab de Tours", "37261", F, 1.0),
    WorkshopSeed("Manufacture de Montreuil", "93048", M, 1.6),
    WorkshopSeed("Atelier textile de Saint-Denis", "93066", S, 1.3),
    WorkshopSeed("FabLab de Lille", "59350", F, 1.2),
    WorkshopSeed("Métallerie d'Arras", "62041", X, 1.0),
    WorkshopSeed("Atelier bois du Perche, Mortagne-au-Perche", "61293", W, 0.7),
    WorkshopSeed("FabLab de Caen", "14118", F, 1.0),
    WorkshopSeed("Atelier de couture de Rouen", "76540", S, 0.9),
    WorkshopSeed("Atelier bois du Haut-Doubs, Mouthe", "25413", W, 0.6),
    WorkshopSeed("FabLab de Besançon", "25056", F, 1.0),
    WorkshopSeed("Manufacture de Dijon", "21231", M, 1.2),
    WorkshopSeed("Menuiserie d'Autun", "71014", W, 0.8),
    WorkshopSeed("FabLab de Lyon-Gerland", "69123", F, 1.4),
    WorkshopSeed("Atelier de couture de la Croix-Rousse", "69123", S, 1.1),
    WorkshopSeed("Menuiserie de Chartreuse", "38442", W, 0.6),
    WorkshopSeed("FabLab de Grenoble", "38185", F, 1.2),
    WorkshopSeed("Atelier bois du Diois, Die", "26113", W, 0.7),
    WorkshopSeed("Ferme d'impression 3D de la Drôme, Valence", "26362", P, 1.0),
    WorkshopSeed("Métallerie de Saint-Étienne", "42218", X, 1.2),
    WorkshopSeed("FabLab de Toulouse", "31555", F, 1.4),
    WorkshopSeed("Ganterie-atelier de Millau", "12145", S, 0.8),
    WorkshopSeed("Menuiserie de Figeac", "46102", W, 0.8),
    WorkshopSeed("Atelier de couture du Couserans, Saint-Girons", "09261", S, 0.7),
    WorkshopSeed("FabLab de Montpellier", "34172", F, 1.2),
    WorkshopSeed("Menuiserie des Cévennes, Anduze", "30010", W, 0.7),
    WorkshopSeed("Atelier bois de Forcalquier", "04088", W, 0.6),
    WorkshopSeed("FabLab de Marseille", "13055", F, 1.3),
    WorkshopSeed("Métallerie de Toulon", "83137", X, 1.0),
    WorkshopSeed("FabLab de Bordeaux", "33063", F, 1.3),
    WorkshopSeed("Atelier bois du Périgord, Périgueux", "24322", W, 0.9),
    WorkshopSeed("Atelier de couture de Bayonne", "64102", S, 0.9),
    WorkshopSeed("Fab lab d'Ajaccio", "2A004", F, 0.7),
)

WORKSHOPS: tuple[WorkshopSeed, ...] = GRAND_EST + ELSEWHERE

AFNOR_MASK = "afnor-spec-s76-001"

_TRADES = {
    W: ["menuiserie", "agencement"],
    F: ["fabrication-numerique"],
    M: ["menuiserie", "fabrication-numerique"],
    P: ["impression-3d"],
    S: ["couture", "confection"],
    X: ["metallerie", "chaudronnerie"],
}
_RADIUS_KM = {W: 120, F: 90, M: 150, P: 300, S: 250, X: 150}


def _racks(process: str, envelope: list[int], materials: list[dict[str, Any]], hours: float) -> list[dict[str, Any]]:
    """Printers or sewing stations declared as racks of up to 160 machine-hours a week each (the API caps
    one machine at 168 h); matching sums the hours of every machine able to do a step."""
    count = max(1, -(-round(hours) // 160))
    return [
        {"process": process, "envelope_mm": envelope, "materials": materials, "hours_per_week": round(hours / count)}
        for _ in range(count)
    ]


def _machines_wood(size: float) -> list[dict[str, Any]]:
    wood = [
        {"material": "birch_plywood", "max_thickness_mm": 30},
        {"material": "mdf", "max_thickness_mm": 30},
        {"material": "oak", "max_thickness_mm": 40},
    ]
    return [
        {
            "process": "cnc_routing",
            "envelope_mm": [2500, 1250, 100] if size >= 0.8 else [2000, 1000, 100],
            "materials": wood,
            "hours_per_week": round(35 * size),
        },
        {
            "process": "finishing",
            "envelope_mm": [3000, 1500, 1000],
            "materials": wood[:1] + wood[2:],
            "hours_per_week": round(35 * size),
        },
        {
            "process": "assembly",
            "envelope_mm": [3000, 2000, 2000],
            "materials": wood,
            "hours_per_week": round(35 * size),
        },
    ]


def _machines_digital(size: float) -> list[dict[str, Any]]:
    return [
        {
            "process": "laser_cutting",
            "envelope_mm": [1000, 600, 50] if size >= 1 else [700, 500, 40],
            "materials": [
                {"material": "petg", "max_thickness_mm": 3},
                {"material": "pmma", "max_thickness_mm": 8},
                {"material": "birch_plywood", "max_thickness_mm": 6},
            ],
            "hours_per_week": round(25 * size),
        },
        *_racks(
            "fdm_printing",
            [250, 210, 210],
            [{"material": "pla", "max_thickness_mm": 10}, {"material": "petg", "max_thickness_mm": 10}],
            140 * size,
        ),
        {
            "process": "assembly",
            "envelope_mm": [1000, 1000, 1000],
            "materials": [{"material": "petg", "max_thickness_mm": 5}, {"material": "pla", "max_thickness_mm": 5}],
            "hours_per_week": round(20 * size),
        },
    ]


def machines(seed: WorkshopSeed) -> list[dict[str, Any]]:
    """The machines a workshop of this kind and size declares (``POST /v1/workshops/me/machines`` bodies)."""
    size = seed.size
    if seed.kind is W:
        return _machines_wood(size)
    if seed.kind is F:
        return _machines_digital(size)
    if seed.kind is M:
        return _machines_wood(size) + _machines_digital(size)
    if seed.kind is P:
        return _racks(
            "fdm_printing",
            [300, 300, 300],
            [
                {"material": "pla", "max_thickness_mm": 10},
                {"material": "petg", "max_thickness_mm": 10},
                {"material": "abs", "max_thickness_mm": 10},
            ],
            400 * size,
        )
    if seed.kind is S:
        cloth = [{"material": "cotton", "max_thickness_mm": 3}, {"material": "polyester", "max_thickness_mm": 3}]
        return [
            *_racks("sewing", [1500, 1000, 10], cloth, 140 * size),
            {
                "process": "embroidery",
                "envelope_mm": [400, 300, 5],
                "materials": cloth,
                "hours_per_week": round(20 * size),
            },
        ]
    steel = [
        {"material": "steel", "max_thickness_mm": 15},
        {"material": "stainless_steel", "max_thickness_mm": 8},
        {"material": "aluminium", "max_thickness_mm": 8},
    ]
    return [
        {
            "process": "laser_cutting",
            "envelope_mm": [3000, 1500, 20],
            "materials": steel,
            "hours_per_week": round(35 * size),
        },
        {
            "process": "sheet_metal",
            "envelope_mm": [3000, 1500, 6],
            "materials": steel,
            "hours_per_week": round(35 * size),
        },
        {
            "process": "welding",
            "envelope_mm": [3000, 2000, 2000],
            "materials": steel,
            "hours_per_week": round(35 * size),
        },
    ]


def capacities(seed: WorkshopSeed) -> dict[str, int]:
    """Declared units per day for catalogue items (``PUT /v1/workshops/me/capacities/{slug}``)."""
    if seed.kind in (F, M):
        # FDM headbands bound visor output: ~45 min a headband on printers running the week's hours.
        return {"face-visor": max(10, round(140 * seed.size * 60 / 45 / 5 / 5) * 5)}
    if seed.kind is P:
        return {"door-opener": round(400 * seed.size * 60 / 35 / 5)}
    if seed.kind is S:
        return {"uns1-mask": round(140 * seed.size * 60 / 12 / 5 / 10) * 10}
    return {}


@dataclass(frozen=True)
class Profile:
    trades: list[str]
    labels: list[str]
    certifications: list[str]
    radius_km: float


def profile(seed: WorkshopSeed) -> Profile:
    labels = ["fab-lab"] if seed.kind is F else ["manufacture-de-proximite"]
    if seed.kind is M:
        labels.append("tiers-lieu")
    return Profile(
        trades=_TRADES[seed.kind],
        labels=labels,
        certifications=[AFNOR_MASK] if seed.kind is S else [],
        radius_km=_RADIUS_KM[seed.kind],
    )


@dataclass(frozen=True)
class OrgSeed:
    name: str
    insee: str
    siren: str
    role: str
    kind: str = "collectivite"

    @property
    def siret(self) -> str:
        return siret_for_siren(self.siren, first_nic=1)


# Real EPCI, with their real SIREN (from the commune table's epci_siren column).
DESK_BUYER = OrgSeed("Communauté de communes Creuse Grand Sud", "23008", "200044014", "buyer")
COLLECTIVITES: tuple[OrgSeed, ...] = (
    DESK_BUYER,
    OrgSeed("Communauté d'agglomération Mulhouse Alsace Agglomération", "68224", "200066009", "buyer"),
    OrgSeed("Lannion-Trégor Communauté", "22113", "200065928", "buyer"),
)
COORDINATOR = OrgSeed(
    "Cellule de coordination Manufactures de proximité Grand Est",
    "67482",
    siret_from_name("Cellule de coordination Manufactures de proximité Grand Est")[:9],
    "coordinator",
    kind="coordination",
)


@dataclass(frozen=True)
class DeskStory:
    quantity: int = 4
    delivery_insee: str = "23008"
    address: str = "Espace France Services, 7 rue de Vaveix, 23200 Aubusson"
    deadline_days: int = 35
    service_code: str = "FRANCE-SERVICES"
    engagement_number: str = "EJ-2026-0417"
    # what the first three invited makers quote, per desk HT (20 % VAT)
    prices: tuple[str, ...] = ("1140.00", "1085.00", "1195.00")
    tracking: str = "Transports Limousin Express LX-23-0481"
    # the estimated need HT (four desks at about 1 200 € HT): far below the R.2122-8 threshold
    estimated_value_eur_ht: str = "4800.00"


@dataclass(frozen=True)
class RotationStory:
    """One buyer equips three sites with monitor stands, a month apart: the nearest workshop is the
    cheapest each time; the third award to it asks for a justification (R.2122-8: do not contract
    systematically with the same operator when several offers meet the need)."""

    buyer: OrgSeed = field(default_factory=lambda: COLLECTIVITES[2])
    item: str = "monitor-stand"
    quantity: int = 8
    delivery_insee: str = "22113"
    sites: tuple[str, ...] = (
        "Médiathèque communautaire, 2 rue Kérampont, 22300 Lannion",
        "Maison France Services, place de l'Église, 22140 Cavan",
        "Point information jeunesse, 3 rue de la Poste, 22700 Perros-Guirec",
    )
    deadline_days: int = 30
    # (the favourite's price, the other workshop's price), per stand HT, 20 % VAT
    prices: tuple[str, str] = ("62.00", "68.50")
    justification: str = (
        "Atelier à 40 km qui livre et pose sans frais dans nos trois sites ; son offre est la moins chère "
        "des deux reçues, et le second atelier a été consulté à chaque achat."
    )


@dataclass(frozen=True)
class DecpStory:
    """An award of 40 000 € HT or more: its données essentielles (DECP) must be published within two
    months of notification; the broker writes the record in the official format."""

    buyer: OrgSeed = field(default_factory=lambda: COLLECTIVITES[1])
    item: str = "france-services-desk"
    quantity: int = 36
    delivery_insee: str = "68224"
    address: str = "Services techniques, 2 rue Pierre et Marie Curie, 68200 Mulhouse (pour 12 espaces France Services)"
    deadline_days: int = 60
    estimated_value_eur_ht: str = "45000.00"
    prices: tuple[str, str] = ("1165.00", "1210.00")  # per desk HT: 36 × 1 165 € = 41 940 € HT


@dataclass(frozen=True)
class DeliveryPoint:
    label: str
    insee: str
    quantity: int
    priority: int


@dataclass(frozen=True)
class CrisisStory:
    item: str = "face-visor"
    region: str = "Grand Est"
    working_days: int = 10  # the deadline falls after exactly this many working days: same capacities any day
    priority: int = 1
    max_distance_km: float = 150
    # the makers who decline what they were offered, and why (others are taken, by name, if one got nothing)
    declines: tuple[tuple[str, str], ...] = (
        ("FabLab de Haguenau", "Plus de PETG en stock : le fournisseur annonce un réassort dans trois semaines."),
        ("Fab lab de Sarreguemines", "Nos imprimantes sont déjà mobilisées pour le centre hospitalier voisin."),
        ("FabLab de Lunéville", "Atelier fermé : l'équipe bénévole est confinée jusqu'à nouvel ordre."),
    )
    # (units produced, units delivered) reported in rounds, as fractions of each accepted commitment
    rounds: tuple[tuple[float, float], ...] = ((0.3, 0.0), (0.6, 0.3), (0.9, 0.6), (1.0, 1.0))
    points: tuple[DeliveryPoint, ...] = field(
        default_factory=lambda: (
            DeliveryPoint("CHU de Strasbourg — Nouvel Hôpital Civil", "67482", 1500, 1),
            DeliveryPoint("GHR Mulhouse Sud-Alsace — Hôpital Émile-Muller", "68224", 1500, 1),
            DeliveryPoint("Hôpitaux civils de Colmar — Hôpital Pasteur", "68066", 1000, 1),
            DeliveryPoint("CHR Metz-Thionville — Hôpital de Mercy", "57031", 900, 1),
            DeliveryPoint("CHRU de Nancy — Hôpitaux de Brabois", "54547", 900, 1),
            DeliveryPoint("CHU de Reims — Hôpital Robert-Debré", "51454", 700, 1),
            DeliveryPoint("Centre hospitalier Émile-Durkheim, Épinal", "88160", 500, 2),
            DeliveryPoint("Centre hospitalier de Saint-Dié-des-Vosges", "88413", 400, 2),
            DeliveryPoint("Groupe hospitalier Sélestat-Obernai", "67462", 400, 2),
            DeliveryPoint("EHPAD Les Magnolias, Guebwiller", "68112", 200, 2),
            DeliveryPoint("EHPAD Le Parc, Saverne", "67437", 150, 2),
            DeliveryPoint("EHPAD Résidence du Château, Munster", "68226", 120, 3),
            DeliveryPoint("Pharmacie de la Place, Thann", "68334", 80, 3),
            DeliveryPoint("Pharmacie du Marché, Altkirch", "68004", 80, 3),
            DeliveryPoint("Mairie de Ribeauvillé — agents d'accueil", "68269", 60, 3),
            DeliveryPoint("Mairie de Sarreguemines — agents d'accueil", "57631", 100, 3),
        )
    )
