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
