"""Issue 21 item 6: order and crisis call pages print as documents (the print rules hide what cannot be
used on paper: the menus, the forms, the buttons) — a check that the rules are there and apply to the
page elements the templates really use."""

from __future__ import annotations

import re
from pathlib import Path

WEB = Path(__file__).resolve().parents[3] / "broker" / "web"


def test_the_print_rules_hide_the_interface_and_keep_tables_whole() -> None:
    css = (WEB / "static" / "app.css").read_text(encoding="utf-8")
    block = re.search(r"@media print \{(.*)\n\}", css, flags=re.S)
    assert block, "no @media print block"
    rules = block.group(1)
    for selector in ("header.top", "footer.foot", "nav", "form", "button"):
        assert selector in rules.split("{", 1)[0], selector
    assert ".table-wrap { overflow: visible !important; }" in rules
    base = (WEB / "templates" / "base.html.j2").read_text(encoding="utf-8")
    assert '<header class="top">' in base and '<footer class="foot">' in base  # the selectors match the layout
