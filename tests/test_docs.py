"""The documents' claims held to the files they describe: every generated table and figure equals
what the calibration files (and the library's source) say now, no measured figure stands outside
a table, a generated value or a dated record, every relative link and every path the docs name
exists, and docs/architecture.md's diagrams draw only real imports."""
from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

import pytest

from training import doc_tables
from training.doc_tables import (BLOCK, DOCUMENTS, REPO, VALUE, calibrations, library_imports, rewrite, stale,
                                 unshown_heldout)

sys.path.insert(0, str(Path(__file__).parent))
from test_layering import PACKAGES, imported_packages  # noqa: E402

#: The documents that hold measured figures, and so must keep each in a table, a value or a record.
FIGURE_DOCUMENTS = [REPO / "README.md", *(REPO / "docs" / name for name in ("score.md", "accuracy.md", "modes.md"))]
RECORD = re.compile(r"<!-- record: (?P<date>[^·]*?) · (?P<command>.*?) -->\n(?P<body>.*?)<!-- /record -->", re.S)
#: A measured figure: a percentage or a ratio with decimals, or a rate in scientific notation.
FIGURE = re.compile(r"\d+\.\d+\s?%|\d+\.\d+x\b|\d\.\d+e-\d+")


def relative(path: Path) -> str:
    return str(path.relative_to(REPO))


def test_generated_tables_and_values_match_the_calibration_files():
    assert stale() == [], "run python -m training.doc_tables"


def test_every_held_out_set_of_a_calibration_has_a_table():
    assert unshown_heldout(calibrations()) == {}


def test_a_stale_table_and_value_are_rewritten_and_check_fails(tmp_path):
    cals = calibrations()
    fmr = cals["fast"]["heldout"]["lfw"]["at"]["0.7"]["fmr"]
    doc = tmp_path / "doc.md"
    doc.write_text("LFW: <!-- value: fast | heldout/lfw/at/0.7/fmr | ratio -->9.99x<!-- /value -->.\n\n"
                   "<!-- table: groups | fast | utkface-dev held-out half -->\n| stale |\n<!-- /table -->\n")
    assert doc_tables.main(["--check", str(doc)]) == 1
    assert "9.99x" in doc.read_text()                                  # --check changes nothing
    assert doc_tables.main([str(doc)]) == 0
    text = doc.read_text()
    assert f"LFW: <!-- value: fast | heldout/lfw/at/0.7/fmr | ratio -->{fmr * 1000:.2f}x<!-- /value -->." in text
    groups = cals["fast"]["heldout"]["utkface-dev held-out half"]
    for name, group in groups.items():
        assert f"| {name} | {group['normalised']['pairs']:,} |" in text
    assert "| stale |" not in text
    assert doc_tables.main(["--check", str(doc)]) == 0


def test_a_held_out_set_that_no_table_shows_is_named(tmp_path):
    cals = calibrations()
    cals["fast"]["heldout"]["lag-dev"] = {"pairs": 3}
    assert unshown_heldout(cals) == {"fast": ["lag-dev"]}
    doc = tmp_path / "doc.md"
    doc.write_text("<!-- table: heldout | lag-dev -->\n<!-- /table -->\n")
    assert "lag-dev" in doc_tables.shown_heldout_keys([doc])
    assert "| pairs | — | 3 |" in rewrite(doc.read_text(), cals)


def test_a_wildcard_value_gives_the_range():
    cals = calibrations()
    adults = [g["normalised"]["0.7"] for name, g in cals["accurate"]["heldout"]["utkface-dev held-out half"].items()
              if name.startswith("adults, both ")]
    spec = "accurate | heldout/utkface-dev held-out half/adults, both */normalised/0.7 | ratio"
    assert doc_tables.render_value(spec, cals) == f"{min(adults) * 1000:.2f}–{max(adults) * 1000:.2f}x"


@pytest.mark.parametrize("path", FIGURE_DOCUMENTS, ids=relative)
def test_no_measured_figure_stands_outside_a_table_a_value_or_a_record(path):
    text = path.read_text()
    for pattern in (BLOCK, VALUE, RECORD, re.compile(r"```.*?```", re.S)):
        text = pattern.sub("", text)
    assert FIGURE.findall(text) == []


@pytest.mark.parametrize("path", DOCUMENTS, ids=relative)
def test_records_name_their_date_and_command(path):
    text = path.read_text()
    assert text.count("<!-- record:") == len(RECORD.findall(text)), "a record marker is malformed or unclosed"
    for record in RECORD.finditer(text):
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", record["date"].strip()), record[0][:80]
        assert re.match(r"(python|make|facecmp) ", record["command"]), record[0][:80]


@pytest.mark.parametrize("path", DOCUMENTS, ids=relative)
def test_markers_are_closed_and_render_as_comments(path):
    text = path.read_text()
    assert text.count("<!-- table:") - text.count("`<!-- table:") == len(BLOCK.findall(text))
    assert text.count("<!-- value:") - text.count("`<!-- value:") == len(VALUE.findall(text))
    # a line that starts with a comment starts an HTML block in Markdown: the rest of that line
    # would lose its formatting, so a value sits inside its line
    assert not re.findall(r"^\s*\(?<!-- value:", text, re.M)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return {slug(m[1]) for m in re.finditer(r"^#+ (.*)$", text, re.M)}


def markdown_documents() -> list[Path]:
    return sorted({*DOCUMENTS, *REPO.glob("*.md")})


@pytest.mark.parametrize("path", markdown_documents(), ids=relative)
def test_relative_links_resolve(path):
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        resolved = (path.parent / file).resolve() if file else path
        if not resolved.exists():
            broken.append(target)
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(target)
    assert broken == []


def defined_names(path: Path) -> dict[str, set[str]]:
    """Top-level names of a module, each with the names its class body defines."""
    names = {}
    for node in ast.parse(path.read_text()).body:
        targets = ([node.name] if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) else
                   [t.id for t in getattr(node, "targets", [getattr(node, "target", None)]) if isinstance(t, ast.Name)])
        members = {getattr(n, "name", None) or getattr(getattr(n, "target", None), "id", None)
                   for n in getattr(node, "body", [])} if isinstance(node, ast.ClassDef) else set()
        for target in targets:
            names[target] = members
    return names


@pytest.mark.parametrize("path", markdown_documents(), ids=relative)
def test_named_paths_and_their_names_exist(path):
    """`facecmp/pipeline.py:FaceComparer.compare` and the like: the file, and the name in it."""
    missing = []
    roots = "|".join(("facecmp", "serve", "eval", "training", "tests", "bench", "notebooks", "docs", r"\.ci"))
    for reference in re.findall(rf"`((?:{roots})/[^`\s<>*]*)`", path.read_text()):
        file, _, name = reference.partition(":")
        target = REPO / file
        if not target.exists():
            missing.append(reference)
        elif name and not name[0].isdigit():
            module = target / "__init__.py" if target.is_dir() else target
            outer, _, member = name.partition(".")
            names = defined_names(module)
            if outer not in names or (member and member not in names[outer]):
                missing.append(reference)
    assert missing == []


def mermaid_edges(text: str, heading: str) -> tuple[set[tuple[str, str]], dict[str, str]]:
    """The edges of the first mermaid diagram under ``heading``, by node id, and each node's label."""
    section = text.split(f"\n## {heading}\n", 1)[1]
    diagram = section.split("```mermaid\n", 1)[1].split("```", 1)[0]
    labels, edges = {}, set()
    node = re.compile(r'(\w+)(?:\["?(.*?)"?\])?')
    for line in diagram.splitlines()[1:]:
        groups = []
        for side in line.split("-->"):
            ids = []
            for part in side.split("&"):
                match = node.fullmatch(part.strip())
                assert match, f"cannot read {part!r} in {line!r}"
                ids.append(match[1])
                if match[2]:
                    labels[match[1]] = match[2]
            groups.append(ids)
        edges |= {(a, b) for left, right in zip(groups, groups[1:]) for a in left for b in right}
    return edges, labels


def package_imports() -> set[tuple[str, str]]:
    """(importer, imported) among the project's packages, the notebooks' code cells and the bench included."""
    edges = set()
    for folder in (*PACKAGES, "bench"):
        for path in (REPO / folder).rglob("*.py"):
            edges |= {(folder, name) for name in imported_packages(path) & set(PACKAGES) - {folder}}
    for notebook in (REPO / "notebooks").glob("*.ipynb"):
        for cell in json.loads(notebook.read_text())["cells"]:
            if cell["cell_type"] == "code":
                source = "".join(cell["source"])
                edges |= {("notebooks", name) for name in PACKAGES
                          if re.search(rf"^\s*(import|from) {name}\b", source, re.M)}
    return edges


def test_the_package_diagram_is_the_packages_imports():
    edges, _ = mermaid_edges((REPO / "docs" / "architecture.md").read_text(), "Packages")
    assert edges == package_imports()


def test_the_module_diagram_draws_only_real_imports():
    edges, labels = mermaid_edges((REPO / "docs" / "architecture.md").read_text(),
                                  "The library's modules, and which imports which")
    imports = library_imports()

    def modules(node: str) -> set[str]:   # a package's node stands for its modules too
        name = labels.get(node, node).split(":")[0].strip()
        assert name in imports, f"{name} is no module of facecmp/"
        return {m for m in imports if m == name or m.startswith(name + ".")}

    false = [(a, b) for a, b in sorted(edges)
             if not any(target in modules(b) for source in modules(a) for target in imports[source])]
    assert false == []


def project_texts() -> dict[str, str]:
    """The project's source, documents and notebook cells, by relative path; comment markers at the
    start of a line are dropped so that a citation may run over lines."""
    texts = {}
    for path in [*markdown_documents(), *(p for folder in (*PACKAGES, "bench", "notebooks", "tests")
                                         for p in sorted((REPO / folder).rglob("*.py")))]:
        texts[relative(path)] = path.read_text()
    for notebook in sorted((REPO / "notebooks").glob("*.ipynb")):
        texts[relative(notebook)] = "\n".join("".join(c["source"]) for c in json.loads(notebook.read_text())["cells"])
    return {name: re.sub(r"\n\s*(#:?|\*)?\s*", " ", text) for name, text in texts.items()}


def test_cited_sections_exist():
    """Where a file cites a section (README or docs/NAME.md, then the heading's words in double
    quotes), that document has a heading that starts with those words."""
    cite = re.compile(r'(README|docs/[\w.]+\.md)[,:]? \(?"([^"]+)"')
    broken = []
    for name, text in project_texts().items():
        for document, section in cite.findall(text):
            target = REPO / ("README.md" if document == "README" else document)
            headings = [re.sub(r"`", "", m[1]) for m in re.finditer(r"^#+ (.*)$", target.read_text(), re.M)]
            if not any(h.startswith(section.replace("`", "")) for h in headings):
                broken.append(f"{name}: {document} {section!r}")
    assert broken == []


def test_a_degraded_set_of_another_layout_is_named_with_the_table_that_shows_it():
    cals = calibrations()
    cals["fast"]["heldout"]["degraded"]["fgnet-dev"] = {"old prints": {"pairs": 7}}
    with pytest.raises(ValueError, match=r"degraded/fgnet-dev/old prints .*table: heldout \| degraded/fgnet-dev"):
        doc_tables.render("degraded | fast", cals)
    assert "| old prints / pairs | — | 7 |" in doc_tables.render("heldout | degraded/fgnet-dev", cals)


def test_a_table_whose_keys_a_refit_renamed_names_the_missing_key():
    cals = calibrations()
    del cals["accurate"]["heldout"]["lfw_cosine_only"]
    with pytest.raises(ValueError, match=r"table: cost \| cacd-vs-dev.*no 'lfw_cosine_only'"):
        doc_tables.render("cost | cacd-vs-dev", cals)


def test_a_bench_table_reads_its_results_file_and_says_which_target_is_met(tmp_path):
    """The bench kind's targets: the ratio to the recipe in each round, "yes" only when every round reaches it."""
    results = json.loads((REPO / "bench" / "results" / "dataset.json").read_text())
    rounds = results["rounds"][:1]
    rounds[0]["images_per_s"].update({"recipe": 10.0, "fast, 2 worker processes": 40.0,
                                      "accurate, 2 worker processes": 9.0})
    rounds[0]["compare_p50_ms"].update({"recipe": 100.0, "fast": 10.0})
    path = tmp_path / "dataset.json"
    path.write_text(json.dumps({**results, "rounds": rounds}))
    text = doc_tables.render(f"bench | {path} | targets", {})
    assert "| FAST, dataset embedding ≥ 4x | 4.00x | yes |" in text
    assert "| ACCURATE, dataset embedding ≥ 1x | 0.90x | no |" in text
    assert "| FAST compare of two 640x480 photos ≥ 8x | 10.00x | yes |" in text
    with pytest.raises(ValueError, match="unknown bench section"):
        doc_tables.render(f"bench | {path} | speed", {})


def test_every_environment_variable_the_docs_name_is_read():
    """A FACECMP_* variable named in a document is a settings field (the library's, the liveness
    check's or the service's) or a name the notebooks or the bench read themselves."""
    from facecmp.settings import LivenessSettings
    from serve.settings import Settings

    known = {f"FACECMP_{name.upper()}" for name in Settings.model_fields if name != "liveness"}
    known |= {f"FACECMP_LIVENESS_{name.upper()}" for name in LivenessSettings.model_fields}
    scripts = "".join(p.read_text() for folder in ("bench", "notebooks") for p in (REPO / folder).rglob("*.*")
                      if p.suffix in (".py", ".ipynb"))
    known |= set(re.findall(r"FACECMP_[A-Z0-9_]*[A-Z0-9]", scripts))
    known.add("FACECMP_TORCH_THREADS")   # docs/service.md: the old name, "no longer read"
    named = {(relative(path), name) for path in markdown_documents()   # FACECMP_LIVENESS_* and _<FIELD> name many
             for name in re.findall(r"FACECMP_[A-Z0-9_]*[A-Z0-9](?![A-Z0-9_]*[*<])", path.read_text())}
    assert sorted((path, name) for path, name in named if name not in known) == []
