"""The demo's cast is real where it claims to be: communes exist, SIRETs pass their checks, the crisis
points lie in the crisis region, and the workshops' machines are valid API bodies."""

from __future__ import annotations

from collections import Counter

import msgspec

from adapters.geocoding import load_communes
from broker.api.schemas import MachineIn
from broker.demo import data
from broker.domain.identifiers import siret_problem

GRAND_EST = "44"


def test_every_commune_is_real_and_named_where_the_name_says():
    table = load_communes()
    for seed in data.WORKSHOPS:
        commune = table.commune(seed.insee)
        assert commune is not None, seed
        town = seed.name.rsplit(", ", 1)[-1] if ", " in seed.name else None
        if town:  # "Atelier bois de la Vallée, Felletin" sits in Felletin
            assert commune.name == town, (seed, commune.name)
    for org in (*data.COLLECTIVITES, data.COORDINATOR):
        assert table.commune(org.insee) is not None
    for point in data.CrisisStory().points:
        commune = table.commune(point.insee)
        assert commune is not None and commune.region == GRAND_EST, point


def test_sirets_are_valid_unique_and_deterministic():
    sirets = [s.siret for s in data.WORKSHOPS] + [o.siret for o in (*data.COLLECTIVITES, data.COORDINATOR)]
    assert all(siret_problem(s) is None for s in sirets)
    assert len(set(sirets)) == len(sirets)
    assert data.siret_from_name("FabLab de Lannion") == data.siret_from_name("FabLab de Lannion")
    # the collectivités keep their real SIREN (EPCI)
    assert data.DESK_BUYER.siret.startswith("200044014")


def test_a_plausible_mix_denser_in_the_crisis_region():
    table = load_communes()
    assert 95 <= len(data.WORKSHOPS) <= 110
    assert len({s.name for s in data.WORKSHOPS}) == len(data.WORKSHOPS)
    kinds = Counter(s.kind for s in data.WORKSHOPS)
    assert all(kinds[k] >= 3 for k in data.Kind)
    regions = Counter(table.commune(s.insee).region for s in data.WORKSHOPS)
    assert regions.most_common(1)[0][0] == GRAND_EST and len(regions) >= 10
    populations = [table.commune(s.insee).population or 0 for s in data.WORKSHOPS]
    assert sum(p < 5_000 for p in populations) >= 10 and sum(p >= 30_000 for p in populations) >= 20
    # sewing workshops declare the mask certification; only they do
    assert all((data.AFNOR_MASK in data.profile(s).certifications) == (s.kind is data.Kind.SEWING)
               for s in data.WORKSHOPS)


def test_machines_and_capacities_are_valid_api_bodies():
    for seed in data.WORKSHOPS:
        for machine in data.machines(seed):
            msgspec.convert(machine, MachineIn)
        for units in data.capacities(seed).values():
            assert 0 < units < 10_000


def test_the_procurement_stories_are_plausible():
    """Issue 17: the desk, the rotation and the DECP stories stay below the R.2122-8 threshold of
    2026 (60 000 € HT), the DECP award reaches the DECP threshold (40 000 € HT), and the favourite
    workshop of the rotation story is the cheaper one each time (no other rule fires)."""
    table = load_communes()
    desk, rotation, decp = data.DeskStory(), data.RotationStory(), data.DecpStory()
    assert desk.quantity * max(map(float, desk.prices)) <= float(desk.estimated_value_eur_ht) < 40_000
    assert rotation.buyer in data.COLLECTIVITES and decp.buyer in data.COLLECTIVITES
    assert rotation.buyer != decp.buyer != data.DESK_BUYER
    assert len(rotation.sites) == 3 and len(set(rotation.sites)) == 3
    assert float(rotation.prices[0]) < float(rotation.prices[1])
    assert rotation.quantity * float(rotation.prices[1]) < 40_000
    assert 40_000 <= decp.quantity * float(min(decp.prices)) <= float(decp.estimated_value_eur_ht) < 60_000
    for insee in (rotation.delivery_insee, decp.delivery_insee):
        assert table.commune(insee) is not None
    assert all(part.strip() for part in rotation.justification.split(";"))
