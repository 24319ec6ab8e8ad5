"""The hypothesis layer the schemathesis fuzzing puts over the cases it generates (issue 18, item 5).

schemathesis generates from the OpenAPI document alone: ids that name nothing, strings that name no
commune or catalogue item, and datetimes always with an offset. ``world_case`` draws a generated
case, then:

- fills its id path and query parameters with the seeded world's ids (both tenants', 85 %), and,
  in half the bodies, the fields that name something (``item``, ``commune_insee``, ``buyer_siret``,
  ``quote_ids``, ``workshop_id``…) with real values, so that cases reach the objects;
- in a third of the cases, puts one hostile value in the body, the query or an id (``HOSTILE``):
  naive and extreme datetimes and dates, NUL characters, long or odd unicode (10,000 combining
  marks, RTL overrides, emoji sequences; no lone surrogate: schemathesis' own validator cannot hold
  one), IDNA hosts valid and broken in webhook
  URLs, and deep nesting (40 and 500 levels) in place of a value or of the whole body.

A component schemathesis generated as *negative* (invalid on purpose) is never touched, so a
mutation can never turn an invalid case into a valid one behind the negative-data check's back.
Every answer must stay below 500 and be documented (schemathesis' checks)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from factories import make_siret
from fuzz_world import World
from hypothesis import strategies as st
from schemathesis.core.parameters import ParameterLocation

_NOW = datetime.now(UTC).replace(microsecond=0)


def _at(years: float) -> datetime:
    return _NOW + timedelta(days=365.25 * years)


#: Datetimes: without an offset, at the ends of the calendar, beyond the 5-year bound, malformed.
DATETIMES = [
    "2027-06-01T00:00:00", "2027-06-01T00:00", "2027-06-01T00:00:00.123456", _at(0.1).strftime("%Y-%m-%dT%H:%M:%S"),
    "0001-01-01T00:00:00Z", "0001-01-01T00:00:00+14:00", "0001-01-01T00:00:00-14:00", "9999-12-31T23:59:59Z",
    "9999-12-31T23:59:59-14:00", "9999-12-31T23:59:59.999999+14:00", _at(4.9).isoformat(), _at(5.1).isoformat(),
    _at(100).isoformat(), (_NOW - timedelta(days=1)).isoformat(), "2027-02-29T00:00:00Z", "2026-12-31T23:59:60Z",
    "2027-06-01T24:00:00Z", "2027-06-01T00:00:00+24:00", "2027-06-01t00:00:00z", "2027-06-01 00:00:00+01:00",
    "2027-06-01T00:00:00.1234567891+01:00", "+2027-06-01T00:00:00Z", "20270601T000000Z", "2027-W22-1",
]
#: Dates: the ends of the calendar, too far, impossible, with a time.
DATES = ["0001-01-01", "9999-12-31", _at(4.9).date().isoformat(), _at(5.1).date().isoformat(), "2027-02-29",
         "2027-13-01", "2027-06-01T00:00:00", "20270601", (_NOW - timedelta(days=3)).date().isoformat()]
#: Strings: NUL anywhere, long and odd unicode.
TEXTS = [
    "\x00", "Mairie\x00de Rennes", "a" * 5 + "\x00", "%00", "\\u0000",
    "e" + "\u0301" * 9_999,  # 10,000 code points, one grapheme
    "Z̸̡̛̙͎̝͈̰̪̜͎̭̱̿̀̈́͊͑̐̈͘a̷̧̛̖̹̙̝̜͇͇̾̎̓͘l̴̨̹̤̹̝͉̺͎̈́̓̈́̑̚g̸̢̰̙̞̰̬̮̗̓̆̏̿̈́̕ơ" * 40,
    "\u202eetlovéR\u202c", "مدينة رين", "עיריית רן", "👩‍👩‍👧‍👦" * 1_500, "🇫🇷🏳️‍🌈",
    "\ufeffBOM", "zero\u200bwidth\u200djoiner", "ligne\u2028séparateur",
    "É" * 10_000, "é" * 255, "", " ", "ǅ", "İstanbul", "ß" * 64,
]
#: Webhook URLs: IDNA hosts valid (Unicode and A-label) and broken, and other edge forms.
URLS = [
    "https://bücher.example/hooks", "https://xn--bcher-kva.example/hooks", "https://münchen.de/h",
    "https://例え.テスト/webhooks", "https://пример.рф/h", "https://straße.de/h", "https://BÜCHER.example/h",
    "https://xn--zz.fr/", "https://xn--.fr/", "https://xn--bcher-kva-.example/", "https://xn--ls8h.la/",
    "https://xn--a.fr/", "https://-bücher.fr/", "https://bücher-.fr/", "https://bücher..fr/", "https://.fr/",
    "https://" + "a" * 64 + ".fr/", "https://" + "ü" * 60 + ".fr/", "https://" + ("a" * 60 + ".") * 5 + "fr/",
    "https://\u200d.fr/", "https://bü\u0000cher.fr/", "https://bücher.example:99999/", "https://bücher.example:0/",
    "https://ä\u0308.fr/", "https://%62%c3%bc.fr/", "https://b%C3%BCcher.fr/", "https://exa mple.fr/",
    "https://[::1]/", "https://0x7f.1/", "https:///nohost", "https://user:pw@bücher.example/", "https://١٢٣.fr/",
]
#: Numbers at the ends of what JSON carries.
NUMBERS = [0, -1, 2**31, 2**63, -(2**63) - 1, 10**30, 1e308, -1e308, 5e-324, 0.1, -0.0]


def deep(levels: int, *, kind: str = "list") -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value] if kind == "list" else {"a": value}
    return value


DEEP = [deep(40), deep(40, kind="dict"), deep(500), deep(500, kind="dict")]

_DATETIME = st.sampled_from(DATETIMES)
_DATE = st.sampled_from(DATES)
_TEXT = st.sampled_from(TEXTS)
_URL = st.sampled_from(URLS)
_HOSTILE = st.one_of(_DATETIME, _DATE, _TEXT, st.sampled_from(NUMBERS), st.sampled_from(DEEP))
HOSTILE = {"datetime": DATETIMES, "date": DATES, "text": TEXTS, "url": URLS, "number": NUMBERS, "deep": DEEP}

#: Body fields that name something, and what names it in the world (kind) or a fixed list.
SIRETS = [make_siret(seed) for seed in (11, 12, 13)]
NAMED = {"item": "slug", "slug": "slug", "commune_insee": "insee", "workshop_id": "workshop", "quote_ids": "quote",
         "call_id": "call", "request_id": "request"}
FIXED: dict[str, list[Any]] = {"buyer_siret": SIRETS, "siret": SIRETS, "postcode": ["35000", "22300", "75001"],
                               "url": ["https://erp.example.fr/hooks", "https://bücher.example/hooks"]}


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    """Every (path, value) inside a JSON value, containers included, the root first."""
    found = [(path, value)]
    if len(path) < 6:
        if isinstance(value, dict):
            for key, item in value.items():
                found += _leaves(item, (*path, key))
        elif isinstance(value, list):
            for index, item in enumerate(value[:5]):
                found += _leaves(item, (*path, index))
    return found


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    """A copy of ``value`` with ``new`` at ``path``."""
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replace(value[head], rest, new)}
    copy = list(value)
    copy[head] = _replace(copy[head], rest, new)
    return copy


def _hostile_for(key: Any, value: Any) -> st.SearchStrategy[Any]:
    """A hostile value fitting where it goes: a datetime for a datetime, a URL for a URL…"""
    if key == "url":
        return _URL
    if isinstance(value, str) and len(value) >= 16 and value[4:5] == "-" and value[10:11] in ("T", "t", " "):
        return st.one_of(_DATETIME, _TEXT)
    if isinstance(value, str) and len(value) == 10 and value[4:5] == "-":
        return st.one_of(_DATE, _TEXT)
    if isinstance(value, str):
        return _TEXT
    return _HOSTILE


def _named(draw: Any, world: World, body: Any) -> Any:
    """``body`` with the fields that name something set to names that exist."""
    for path, value in _leaves(body):
        key = path[-1] if path else None
        if not isinstance(key, str):
            continue
        if key in NAMED and (pool := world.ids.get(NAMED[key])):
            if isinstance(value, list):
                new: Any = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=2, unique=True))
            else:
                new = draw(st.sampled_from(pool))
            body = _replace(body, path, new)
        elif key in FIXED and isinstance(value, str):
            body = _replace(body, path, draw(st.sampled_from(FIXED[key])))
    return body


def _hostile_body(draw: Any, body: Any) -> Any:
    spots = _leaves(body)
    path, value = spots[draw(st.integers(0, len(spots) - 1))]
    if draw(st.integers(0, 5)) == 0:
        return _replace(body, path, draw(st.sampled_from(DEEP)))  # nesting in place of a value or of the body
    return _replace(body, path, draw(_hostile_for(path[-1] if path else None, value)))


#: Hostile ids (no "..", "a/b": the client resolves dot segments, so they would name another route).
_PATH_HOSTILE = ["\x00", "%00", "\u202e" + "é" * 300, "0" * 5000, "😀", "\u0301" * 64, " "]


def _aim_path(draw: Any, world: World, params: dict[str, Any], hostile: bool) -> tuple[dict[str, Any], bool]:
    """The path's ids drawn from the world (85 %); maybe one hostile id. Returns whether it was used."""
    params = dict(params)
    for name in sorted(params):
        pool = world.pool(name)
        if pool and draw(st.integers(0, 19)) < 17:
            params[name] = draw(st.sampled_from(pool))
    if hostile and draw(st.integers(0, 3)) == 0:
        name = draw(st.sampled_from(sorted(params)))
        params[name] = draw(st.sampled_from([*_PATH_HOSTILE, f"{params[name]}\x00"]))
        return params, True
    return params, False


def _aim_query(draw: Any, world: World, query: dict[str, Any], hostile: bool) -> tuple[dict[str, Any], bool]:
    query = dict(query)
    for name in sorted(query):
        if (pool := world.pool(name)) and draw(st.booleans()):
            query[name] = draw(st.sampled_from(pool))
        elif name in FIXED and draw(st.booleans()):
            query[name] = draw(st.sampled_from(FIXED[name]))
    if hostile and draw(st.integers(0, 2)) == 0:
        name = draw(st.sampled_from(sorted(query)))
        query[name] = draw(st.one_of(_DATETIME, _DATE, _TEXT))
        return query, True
    return query, False


@st.composite
def world_case(draw: Any, operation: Any, mode: Any, world: World) -> Any:
    """A case of ``operation`` generated by schemathesis in ``mode``, aimed at the world's objects and,
    a third of the time, carrying one hostile value. A part is assigned only when it changed: each
    assignment has schemathesis validate that part again."""
    case = draw(operation.as_strategy(generation_mode=mode))
    meta = case.meta

    def negative(location: ParameterLocation) -> bool:
        return meta is not None and meta.is_negative_at(location)

    hostile = draw(st.integers(0, 2)) == 0
    if case.path_parameters and not negative(ParameterLocation.PATH):
        params, used = _aim_path(draw, world, case.path_parameters, hostile)
        hostile = hostile and not used
        if params != case.path_parameters:
            case.path_parameters = params
    if case.query and not negative(ParameterLocation.QUERY):
        query, used = _aim_query(draw, world, case.query, hostile)
        hostile = hostile and not used
        if query != case.query:
            case.query = query
    if isinstance(case.body, dict | list) and not negative(ParameterLocation.BODY):
        body = case.body
        if draw(st.booleans()):
            body = _named(draw, world, body)
        if hostile:
            body = _hostile_body(draw, body)
        if body is not case.body:
            case.body = body
    return case
