"""Every `docs/protocol.md §N` citation in the code names a section that exists (no JAX needed).

Comments and docstrings cite the facts about the authors' code that the implementation relies
on as `docs/protocol.md §N`, N being the number that starts a heading of docs/protocol.md;
several sections read `docs/protocol.md §2.1, §2.5` and a range `docs/protocol.md §3-§5`.
Files outside the repository must not be cited: the old `spec N` citations and the names of
two notes that never were in the repository are rejected.
"""

from __future__ import annotations

import pathlib
import re
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[1]
PROTOCOL = ROOT / "docs" / "protocol.md"
SCANNED_DIRS = ("lasem_jax", "launch", "configs", "benchmarks", "tests", "examples")

NUMBER = r"\d+(?:\.\d+)*"
# One citation: the page, then one or more section numbers joined by ", ", " and " or "-".
CITATION = re.compile(rf"docs/protocol\.md ((?:§{NUMBER})(?:(?:, | and |-)§{NUMBER})*)")
SECTION = re.compile(rf"§({NUMBER})")
HEADING = re.compile(rf"^#{{2,4}} ({NUMBER}) \S", re.MULTILINE)
# The citation form this test replaced: "spec" followed by a number, "spec section" and a number.
OLD_CITATION = re.compile(r"\bspec(?:ification)?'?s? (?:sections? )?\d")
# Built in pieces so that this file does not match itself.
FORBIDDEN = ("performance" + "_notes", "reference_code" + "_spec", "../" + "shared/")


def _python_files() -> list[pathlib.Path]:
    """Tracked and new (not ignored) Python files; without git, all of the scanned folders."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.py"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        files = [ROOT / line for line in out.splitlines() if line]
    except (OSError, subprocess.CalledProcessError):
        files = []
    if not files:
        files = [p for d in SCANNED_DIRS for p in sorted((ROOT / d).rglob("*.py"))]
    return [p for p in files if p.is_file() and ".venv" not in p.parts]


def _headings() -> set[str]:
    return set(HEADING.findall(PROTOCOL.read_text(encoding="utf-8")))


def _citations(text: str) -> list[tuple[int, str]]:
    """`(line, section)` for every section number cited in `text`."""
    found = []
    for match in CITATION.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        found.extend((line, number) for number in SECTION.findall(match.group(1)))
    return found


def _stray_sections(text: str) -> list[int]:
    """Lines of `§N` marks that are not part of a `docs/protocol.md` citation."""
    inside = {m.start() for c in CITATION.finditer(text) for m in SECTION.finditer(text, *c.span())}
    return [
        text.count("\n", 0, m.start()) + 1
        for m in SECTION.finditer(text)
        if m.start() not in inside
    ]


def _relative(path: pathlib.Path) -> str:
    return str(path.relative_to(ROOT))


def test_protocol_page_has_numbered_headings():
    headings = _headings()
    for number in ("1.1", "1.8", "2.3", "4", "7", "10", "11.10"):
        assert number in headings


def test_every_cited_section_exists():
    headings = _headings()
    missing, count = [], 0
    for path in _python_files():
        for line, number in _citations(path.read_text(encoding="utf-8")):
            count += 1
            if number not in headings:
                missing.append(f"{_relative(path)}:{line}: docs/protocol.md §{number}")
    assert count > 50, f"only {count} citations found: has the citation form changed?"
    assert not missing, "sections not in docs/protocol.md:\n" + "\n".join(missing)


def test_no_section_mark_outside_a_citation():
    stray = [
        f"{_relative(path)}:{line}"
        for path in _python_files()
        for line in _stray_sections(path.read_text(encoding="utf-8"))
    ]
    assert not stray, "`§N` without `docs/protocol.md` before it:\n" + "\n".join(stray)


def test_no_old_spec_citations():
    old = [
        f"{_relative(path)}:{i}: {line.strip()}"
        for path in _python_files()
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if OLD_CITATION.search(line)
    ]
    assert not old, "cite docs/protocol.md §N instead:\n" + "\n".join(old)


def test_no_files_outside_the_repository_cited():
    cited = [
        f"{_relative(path)}: {name}"
        for path in _python_files()
        for name in FORBIDDEN
        if name in path.read_text(encoding="utf-8")
    ]
    assert not cited, "files outside the repository cited:\n" + "\n".join(cited)


def _github_anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces to '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_links_to_protocol_sections_resolve():
    """Links from the README and docs/ to `protocol.md#...` name headings that exist."""
    text = PROTOCOL.read_text(encoding="utf-8")
    anchors = {_github_anchor(h) for h in re.findall(r"^#+ (.+)$", text, re.MULTILINE)}
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    links = [
        link
        for page in pages
        for link in re.findall(r"\]\((?:docs/|\.\./)?protocol\.md#([^)]+)\)", page.read_text())
    ]
    assert len(links) > 5
    assert not [a for a in links if a not in anchors], sorted(set(links) - anchors)
    assert not any(OLD_CITATION.search(page.read_text(encoding="utf-8")) for page in pages)
