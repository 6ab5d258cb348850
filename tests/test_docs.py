"""README.md and docs/*.md: links, images and repository paths resolve (issue 24).

The README leads with what a user does and points into ``docs/`` for the parity evidence,
the speed measurements and the full errors reference; a moved section must not leave a
dangling link, a broken image or a path to a file that no longer exists.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# `nbnumba/...`, `specs/...`, `bench/...`, `docs/...`, `tests/...` quoted in the text
REPO_PATH = re.compile(r"`((?:nbnumba|specs|bench|docs|tests)/[^`\s]*)`")
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    in_code = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and re.match(r"#+ ", line):
            slug = _slug(line.lstrip("#"))
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            if n:  # GitHub numbers repeated headings
                seen[f"{slug}-{n}"] = 1
    return set(seen)


def _prose(path: Path) -> str:
    """The text outside fenced code blocks (commands there may name files they create)."""
    return re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_and_images_resolve(doc):
    broken = []
    for target in LINK.findall(_prose(doc)):
        if re.match(r"[a-z]+:", target):  # http(s), mailto: not checked offline
            continue
        path, _, anchor = target.partition("#")
        dest = (doc.parent / path).resolve() if path else doc
        if not dest.exists() or (anchor and dest.suffix == ".md"
                                 and anchor not in _anchors(dest)):
            broken.append(target)
    assert not broken, f"{doc.name}: broken links {broken}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_repository_paths_exist(doc):
    missing = [p for p in REPO_PATH.findall(_prose(doc)) if not list(ROOT.glob(p))]
    assert not missing, f"{doc.name}: no such files {missing}"


def test_readme_credits_nanobragg_authors_first_and_in_licence():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    head = "\n".join(text.splitlines()[:10])
    assert "James Holton and Ken Frankel" in head and "MIT" in head
    licence = text.split("## Licence", 1)[1]
    assert "James Holton and Ken Frankel" in licence


def test_readme_keeps_the_two_setup_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    setup = text.split("## Set up", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", setup, flags=re.S)
    assert len(blocks) == 2
    assert blocks[0].startswith('python3 -m venv .venv && .venv/bin/pip install -e ".[test]"')
    assert "nanobragg-nb -cell 100 100 100 90 90 90" in blocks[0]
    assert blocks[1] == ".venv/bin/python -m pytest -q\n"


def test_no_merge_conflict_markers_are_left():
    """A merge that left ``<<<<<<<``/``>>>>>>>`` lines in a spec or a source file."""
    import subprocess

    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if tracked.returncode != 0:
        pytest.skip("not a git checkout")
    marker = re.compile(r"^(<{7}|>{7}) |^={7}$", re.M)
    bad = [name for name in tracked.stdout.split()
           if name.endswith((".md", ".py", ".toml", ".cfg")) and (ROOT / name).is_file()
           and marker.search((ROOT / name).read_text(encoding="utf-8", errors="replace"))]
    assert bad == []


def test_readme_dials_recipe_is_the_tests_word_for_word():
    """README's "A rotation series for DIALS" holds every command tests/test_dials_e2e.py
    runs, as one line each (issue 26: the recipe is the one the tests run)."""
    import ast

    source = (ROOT / "tests" / "test_dials_e2e.py").read_text(encoding="utf-8")
    names: dict = {}
    for node in ast.parse(source).body:  # the module's constants, as the test builds them
        if isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) for t in node.targets) \
                and node.targets[0].id.isupper():
            try:
                value = eval(compile(ast.Expression(node.value), "e2e", "eval"), {}, names)
            except Exception:  # noqa: BLE001 - not a plain constant (a Path): not a command
                continue
            names[node.targets[0].id] = value
    commands = names["SIMULATE"] + names["PROCESS"] + names["CBF"]
    readme = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(commands) >= 10
    assert [c for c in commands if c not in readme] == []
