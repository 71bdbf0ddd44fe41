"""The SVG charts are built from numbers and escaped labels only."""

from __future__ import annotations

from xml.etree import ElementTree

from app.console import charts


def test_labels_are_escaped_and_the_svg_is_well_formed() -> None:
    svg = charts.bars(
        "t<itle>", [charts.Bar("<script>alert(1)</script>", (3, 1), "3/4")], legend=("a&b",)
    )
    root = ElementTree.fromstring(svg)
    assert root.tag.endswith("svg")
    assert root.get("role") == "img"
    assert "<script>" not in svg


def test_bar_widths_follow_the_values() -> None:
    svg = charts.bars("t", [charts.Bar("a", (10,), "10"), charts.Bar("b", (5,), "5")])
    ns = {"s": "http://www.w3.org/2000/svg"}
    widths = [float(r.get("width", 0)) for r in ElementTree.fromstring(svg).findall("s:rect", ns)]
    assert widths[0] == 2 * widths[1] > 0


def test_no_rows_no_chart() -> None:
    assert charts.bars("t", []) == ""
