"""docs/requirements.md explains every requirement code the repository cites, and its test references exist.

The codes (webhooks, retries, idempotency, documents, API conventions, reliability goals and their
details, section references of the design notes) are defined outside the repository; this test reads
only the repository's own files."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "requirements.md"
SCANNED_DIRS = ("broker", "matching", "workers", "adapters", "tests", "docs", "scripts")
SCANNED_FILES = ("README.md", "Makefile", "compose.yaml", "pyproject.toml", "Dockerfile")
SUFFIXES = {".py", ".md", ".toml", ".yaml", ".yml", ".sh", ".cfg", ".ini", ".txt"}
SKIPPED_PARTS = {"__pycache__", ".venv", "node_modules"}

# One pass over the text (several patterns would each rescan it). The families:
#   WH-4, RT-1..4, ID-1..ID-6, DOC-3, API-5, BT-13 (a range repeats the family or not);
#   G3, G3-G5 (reliability goals); R5.1 (their details); T2.a, T5.a–c (fault scenarios);
#   RELIABILITY.md §5 (a section of a design note).
CODE = re.compile(
    r"\b(?:"
    r"(?P<family>WH|RT|ID|DOC|API|BT)-(?P<first>\d{1,2})(?:(?:\.\.|–|—)(?:(?P=family)-)?(?P<last>\d{1,2}))?\b"
    r"|G(?P<goal>\d{1,2})(?:\s*(?:\.\.|-|–|—)\s*G(?P<goal_last>\d{1,2}))?\b"
    r"|R(?P<area>[1-7])\.(?P<item>\d)\b"
    r"|T(?P<scenario>[1-7])\.(?P<case>[a-d])(?:\s*[-–]\s*(?P<case_last>[a-d]))?\b"
    r"|(?P<doc>RELIABILITY|INTEGRATION|DESIGN|API|STYLE)\.md §(?P<section>\d{1,2}(?:\.\d{1,2})?)"
    r")"
)
TEST_REF = re.compile(r"\b(tests/[\w/]+\.py)::(\w+)")


def _sources() -> Iterator[Path]:
    this = Path(__file__).resolve()
    for name in SCANNED_DIRS:
        for path in sorted((ROOT / name).rglob("*")):
            if (
                path.suffix in SUFFIXES
                and path.is_file()
                and not SKIPPED_PARTS.intersection(path.parts)
                and path.resolve() not in (this, DOC.resolve())
            ):
                yield path
    for name in SCANNED_FILES:
        if (ROOT / name).is_file():
            yield ROOT / name


def codes_in(text: str) -> set[str]:
    """Every requirement code cited in ``text``, ranges expanded."""
    found: set[str] = set()
    for match in CODE.finditer(text):
        g = match.groupdict()
        if g["family"]:
            first = int(g["first"])
            found.update(f"{g['family']}-{n}" for n in range(first, int(g["last"] or first) + 1))
        elif g["goal"]:
            first = int(g["goal"])
            found.update(f"G{n}" for n in range(first, int(g["goal_last"] or first) + 1))
        elif g["area"]:
            found.add(f"R{g['area']}.{g['item']}")
        elif g["scenario"]:
            last = g["case_last"] or g["case"]
            found.update(f"T{g['scenario']}.{chr(c)}" for c in range(ord(g["case"]), ord(last) + 1))
        else:
            found.add(f"{g['doc']}.md §{g['section']}")
    return found


def test_the_code_finder_reads_ranges_and_families() -> None:
    sample = "(INTEGRATION.md ID-1..6) WH-3..6 G3-G5 T5.a–c R5.1/R5.2 RELIABILITY.md §5 UTF-8 SHA-256 EN-166 H3"
    assert codes_in(sample) == {
        "ID-1", "ID-2", "ID-3", "ID-4", "ID-5", "ID-6", "WH-3", "WH-4", "WH-5", "WH-6", "G3", "G4", "G5",
        "T5.a", "T5.b", "T5.c", "R5.1", "R5.2", "RELIABILITY.md §5",
    }
    assert codes_in("ID-1..ID-6") == {f"ID-{n}" for n in range(1, 7)}


def test_every_cited_code_is_explained() -> None:
    doc = DOC.read_text(encoding="utf-8")
    missing: dict[str, list[str]] = {}
    for path in _sources():
        for code in codes_in(path.read_text(encoding="utf-8", errors="replace")):
            if f"**{code}**" not in doc:
                missing.setdefault(code, []).append(str(path.relative_to(ROOT)))
    assert not missing, f"requirement codes cited but not explained in docs/requirements.md: {missing}"


def test_every_test_reference_exists() -> None:
    doc = DOC.read_text(encoding="utf-8")
    references = TEST_REF.findall(doc)
    assert len(references) > 50
    broken = []
    for file, name in sorted(set(references)):
        path = ROOT / file
        if not path.is_file():
            broken.append(f"{file} (no such file)")
        elif not re.search(rf"^\s*(?:async\s+)?def {name}\(", path.read_text(encoding="utf-8"), re.MULTILINE):
            broken.append(f"{file}::{name}")
    assert not broken, f"docs/requirements.md names tests that do not exist: {broken}"
