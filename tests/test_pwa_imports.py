"""The web app's modules import one another without cycles.

A cycle between two ES modules works in the browser only while neither touches the other's
exports while it loads, and it says the two are one idea or that a third module is missing
(``forms.js`` and ``views.js`` once shared the child switcher that way; it is
``js/children.js`` now). The app has no bundler to complain, so this test does.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PWA = ROOT / "clients" / "pwa"
IMPORT = re.compile(r"""^\s*(?:import|export)\b[^;]*?\bfrom\s+['"](\.{1,2}/[^'"]+)['"]""", re.M)


def imports_of(path: Path) -> set[Path]:
    """The app's own modules that ``path`` imports (static imports only)."""
    return {(path.parent / found).resolve() for found in IMPORT.findall(path.read_text())}


def cycles(graph: dict[Path, set[Path]]) -> list[list[Path]]:
    """Each import cycle found by a depth-first walk, as the modules along it."""
    found: list[list[Path]] = []
    done: set[Path] = set()

    def walk(node: Path, trail: list[Path]) -> None:
        if node in trail:
            found.append([*trail[trail.index(node) :], node])
            return
        if node in done:
            return
        for target in sorted(graph.get(node, set())):
            walk(target, [*trail, node])
        done.add(node)

    for node in sorted(graph):
        walk(node, [])
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    a, b, c = Path("a.js"), Path("b.js"), Path("c.js")
    assert cycles({a: {b}, b: {c}, c: set()}) == []
    assert cycles({a: {b}, b: {a}}) == [[a, b, a]]


def test_the_web_app_has_no_import_cycles() -> None:
    modules = [*PWA.glob("js/*.js"), PWA / "sw.js"]
    graph = {m.resolve(): imports_of(m) for m in modules}
    assert graph[(PWA / "js" / "forms.js").resolve()]  # the pattern does find imports
    named = [" -> ".join(p.name for p in cycle) for cycle in cycles(graph)]
    assert named == []
