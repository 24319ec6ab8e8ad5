"""The crisis map's pure parts: labels kept apart (moved, else left out), « couvert » only by accepted
units, the shipped department outlines (licensed, small, complete), and the CSV import of delivery
points with its French errors by line."""

from __future__ import annotations

import gzip
import json
import math
from itertools import combinations

import pytest

from adapters.geocoding import load_communes
from broker.domain.crisis import default_call_name
from broker.web.crisis_csv import read_points
from broker.web.map import (
    LABEL_FONT,
    OUTLINES,
    Label,
    Mark,
    coverage,
    departments,
    outlines,
    place_labels,
    projection,
    shorten,
)


def _box(label: Label) -> tuple[float, float, float, float]:
    """The same estimate as place_labels: 0.6 em a character, one em high, baseline at 0.8 em."""
    w, h = 0.6 * LABEL_FONT * len(label.text), LABEL_FONT
    x0 = {"start": label.x, "end": label.x - w, "middle": label.x - w / 2}[label.anchor]
    y0 = label.y - h * 0.8
    return (x0, y0, x0 + w, y0 + h)


def test_labels_of_close_points_are_moved_apart_or_left_out():
    marks = [Mark(300, 200, 8, "CHU de Rennes, Pontchaillou"), Mark(304, 203, 6, "Clinique Saint-Laurent"),
             Mark(300, 214, 6, "EHPAD Les Tilleuls"), Mark(298, 199, 5, "Mairie de Rennes"),
             Mark(700, 20, 5, "Centre hospitalier de Fougères")]
    placed = place_labels(marks, width=720, height=400, obstacles=[Mark(330, 200, 6)])
    assert len(placed) == len(marks)
    assert placed[0] is not None  # the first (most important) always finds room here
    assert placed[4] is not None and placed[4].anchor in ("end", "middle")  # near the right edge: not to the right
    kept = [p for p in placed if p is not None]
    assert len(kept) < len(marks)  # four points within a few pixels cannot all be named
    for a, b in combinations(kept, 2):
        ax0, ay0, ax1, ay1 = _box(a)
        bx0, by0, bx1, by1 = _box(b)
        assert not (ax0 < bx1 - 0.5 and bx0 < ax1 - 0.5 and ay0 < by1 - 0.5 and by0 < ay1 - 0.5), (a, b)
    for label, mark in zip(placed, marks, strict=True):  # no label over another point's square
        for other in marks:
            if label is None or other is mark:
                continue
            x0, y0, x1, y1 = _box(label)
            assert not (x0 < other.x + other.r - 0.5 and other.x - other.r < x1 - 0.5
                        and y0 < other.y + other.r - 0.5 and other.y - other.r < y1 - 0.5), (label, other)
    for label in kept:
        x0, _y0, x1, _y1 = _box(label)
        assert x0 >= 0 and x1 <= 720


def test_far_apart_points_all_keep_their_label_to_the_right():
    marks = [Mark(100 + 150 * i, 100 + 60 * i, 6, f"Point {i}") for i in range(4)]
    placed = place_labels(marks, width=720, height=400)
    assert all(p is not None and p.anchor == "start" for p in placed)
    assert shorten("Centre hospitalier universitaire de Rennes, site de Pontchaillou").endswith("…")


def test_covered_only_by_accepted_units():
    assert coverage(requested=100, committed=100, accepted=0) == "proposed"
    assert coverage(requested=100, committed=100, accepted=60) == "proposed"
    assert coverage(requested=100, committed=80, accepted=80) == "short"
    assert coverage(requested=100, committed=100, accepted=100) == "covered"


def test_department_outlines_are_shipped_small_licensed_and_complete():
    assert OUTLINES.stat().st_size < 300_000
    data = json.loads(gzip.decompress(OUTLINES.read_bytes()))
    assert "Etalab" in data["licence"] and "IGN" in data["source"]
    assert (OUTLINES.parent / "README.md").read_text(encoding="utf-8").count("Licence Ouverte") >= 1
    found = departments()
    codes = {d.code for d in found}
    assert len(found) == 96 and {"01", "2A", "2B", "35", "75", "95"} <= codes
    rennes = next(d for d in found if d.code == "35")
    assert rennes.lon_min < -1.68 < rennes.lon_max and rennes.lat_min < 48.11 < rennes.lat_max
    # Brittany's frame draws Ille-et-Vilaine and its neighbours, not the whole country.
    box = projection([(48.11, -1.68), (47.2, -1.55)])
    region, country = outlines(box), outlines(projection([(51.0, -4.8), (42.3, 8.3)]))
    assert region.startswith("M") and 4 <= region.count("Z") < country.count("Z")
    assert not math.isnan(float(region[1:].split()[0]))


@pytest.fixture(scope="module")
def geocoder():
    return load_communes()


def test_csv_import_reads_both_separators_a_bom_a_header_and_the_form_s_communes(geocoder):
    text = ("\ufeffNom du point;Commune;Quantité;Priorité\n"
            "CHU de Rennes, Pontchaillou;Rennes;400;1\n"
            "\n"
            "EHPAD de Vitré;Vitré (35);150\n"
            "Centre hospitalier de Brest;29019;80;1\n"
            "Mairie de Lannion;22300 Lannion;1 200;2;colonne ignorée\n")
    points, errors = read_points(text, geocoder)
    assert errors == []
    assert points == [
        {"label": "CHU de Rennes, Pontchaillou", "commune_insee": "35238", "quantity": 400, "priority": 1},
        {"label": "EHPAD de Vitré", "commune_insee": "35360", "quantity": 150, "priority": 3},
        {"label": "Centre hospitalier de Brest", "commune_insee": "29019", "quantity": 80, "priority": 1},
        {"label": "Mairie de Lannion", "commune_insee": "22113", "quantity": 1200, "priority": 2},
    ]
    points, errors = read_points('"Pharmacie du Centre, Redon",Redon,10,4\n', geocoder)
    assert errors == [] and points[0]["label"] == "Pharmacie du Centre, Redon" and points[0]["priority"] == 4


def test_csv_import_says_every_bad_line_in_french(geocoder):
    points, errors = read_points("CHU;Saint-Denis;10;1\nX;Mulhouse (68);0;2\nSeule colonne\n;Rennes;5;6\n",
                                 geocoder)
    assert errors[0].startswith("Ligne 1, commune : « Saint-Denis » désigne plusieurs communes (")
    assert "par exemple « Saint-Denis (974) »" in errors[0] or "par exemple « Saint-Denis (93) »" in errors[0]
    assert errors[1] == "Ligne 2, quantité : Saisissez un nombre entre 1 et 10\u202f000\u202f000."
    assert errors[2].startswith("Ligne 3 : 1 colonne(s) au lieu de 3 ou 4")
    assert errors[3:] == ["Ligne 4, nom du point : Ce champ est obligatoire.",
                          "Ligne 4, priorité : Cette valeur n'est pas dans la liste proposée."]
    assert points == []
    assert read_points("", geocoder)[1][0].startswith("Le fichier ne contient aucun point")


def test_default_call_name_is_the_item_and_the_day():
    from datetime import date

    assert default_call_name("Visières", date(2026, 12, 3)) == "Visières — 3 décembre 2026"
    assert default_call_name("Blouses", date(2027, 1, 1)) == "Blouses — 1er janvier 2027"
