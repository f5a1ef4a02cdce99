"""The documentation site (mkdocs.yml): every page is in the navigation, no link in the
docs or the READMEs is broken, and the site builds strictly without the network, with
search, rendered Mermaid diagrams on the generated protocol pages and an API reference
of the whole public surface."""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

import lastresort as lr
import lastresort.clock
import lastresort.engine.hookspecs
import lastresort.errors
import lastresort.testing

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
MKDOCS_YML = ROOT / "mkdocs.yml"

#: pages under docs/ deliberately left out of the site's navigation (reached by links only)
NOT_IN_NAV: set[str] = set()

#: pages the site adds (tools/mkdocs_hooks.py): the READMEs of the repository and plugins
README_PAGES = {"readme.md"} | {
    f"plugins/{p.parent.name}.md" for p in ROOT.glob("plugins/*/README.md")
}

#: the Markdown files a reader follows links in: the docs, the README, the plugins' READMEs
MARKDOWN = sorted(
    [ROOT / "README.md", *DOCS.rglob("*.md"), *ROOT.glob("plugins/*/README.md")],
)

# a Markdown inline link or image: [text](target) / ![alt](target), up to an optional title
LINK = re.compile(r"!?\[[^\]]*\]\((?P<target><[^>]+>|[^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(?P<text>.+?)\s*#*\s*$")


def nav_pages() -> list[str]:
    """Every page named in mkdocs.yml's ``nav`` (one ``- title: page.md`` or ``- page.md``
    a line: the file is read as text, its YAML has python tags a safe loader refuses)."""
    text = MKDOCS_YML.read_text(encoding="utf-8")
    nav = text[text.index("\nnav:") :]
    return re.findall(r"^\s*-\s+(?:[^:\n]+:\s+)?(\S+\.md)\s*$", nav, flags=re.MULTILINE)


def slug(heading: str) -> str:
    """The anchor a forge (and the site, see mkdocs.yml's ``toc.slugify``) gives a heading."""
    text = re.sub(r"<[^>]*>", "", heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link in a heading: its text
    text = unicodedata.normalize("NFC", text).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The anchors of a Markdown page's headings (duplicates numbered as a forge does)."""
    found: set[str] = set()
    fenced = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        match = None if fenced else HEADING.match(line)
        if match:
            base = slug(match["text"])
            name, n = base, 0
            while name in found:
                n += 1
                name = f"{base}-{n}"
            found.add(name)
    found |= set(re.findall(r'<a (?:name|id)="([^"]+)"', page.read_text(encoding="utf-8")))
    return found


def links(page: Path) -> list[tuple[int, str]]:
    """``(line, target)`` of every relative link of a page outside code."""
    found = []
    fenced = False
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if fenced:
            continue
        unquoted = re.sub(r"`[^`]*`", "", line)
        for match in LINK.finditer(unquoted):
            target = match["target"].strip("<>")
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:, ...
                continue
            found.append((number, target))
    return found


# -- navigation -----------------------------------------------------------------------


def test_every_docs_page_is_in_the_nav_or_deliberately_left_out() -> None:
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    listed = set(nav_pages())
    missing = sorted(pages - listed - NOT_IN_NAV)
    assert not missing, (
        f"docs pages in no `nav` of mkdocs.yml: {missing}; add them there "
        "(or to NOT_IN_NAV in tests/test_docsite.py, saying why)"
    )
    gone = sorted(listed - pages - README_PAGES)
    assert not gone, f"mkdocs.yml's nav names pages that do not exist: {gone}"
    assert not NOT_IN_NAV & listed, "a page is both in the nav and in NOT_IN_NAV"


def test_every_plugin_readme_is_a_page_in_the_nav() -> None:
    listed = set(nav_pages())
    missing = sorted(README_PAGES - listed)
    assert not missing, f"README pages not in mkdocs.yml's nav: {missing}"


def test_nav_reader_sees_the_pages_of_each_section() -> None:
    # the reader above is a regex: prove it finds the pages of nested sections too
    pages = nav_pages()
    for page in ("index.md", "cli.md", "generated/taskforce.md", "api/lastresort.md"):
        assert page in pages
    assert len(pages) == len(set(pages)), "a page is listed twice in the nav"


# -- links ----------------------------------------------------------------------------


def test_slug_matches_the_forges_anchors() -> None:
    assert (
        slug("`lastresort_deliver(notification: Notification) -> str | None`")
        == "lastresort_delivernotification-notification---str--none"
    )
    assert slug("Refused attempts: the refusal log") == "refused-attempts-the-refusal-log"


def test_no_link_in_the_docs_or_readmes_is_broken() -> None:
    broken = []
    for page in MARKDOWN:
        for number, target in links(page):
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            where = f"{page.relative_to(ROOT)}:{number}: {target}"
            if not dest.exists():
                broken.append(f"{where} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                broken.append(f"{where} (no heading with this anchor in {dest.name})")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_the_link_check_finds_a_broken_file_and_a_broken_anchor(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    (tmp_path / "other.md").write_text("# Other\n\n## A part\n", encoding="utf-8")
    page.write_text(
        "[ok](other.md#a-part) [gone](missing.md) [bad](other.md#no-part)\n"
        "```\n[in code](ignored.md)\n```\n`[inline](ignored.md)` [web](https://example.org)\n",
        encoding="utf-8",
    )
    assert links(page) == [(1, "other.md#a-part"), (1, "missing.md"), (1, "other.md#no-part")]
    assert anchors(tmp_path / "other.md") == {"other", "a-part"}


def test_readme_links_into_the_docs() -> None:
    targets = {t.partition("#")[0] for _, t in links(ROOT / "README.md")}
    assert "docs/index.md" in targets or any(t.startswith("docs/") for t in targets)


# -- the site ---------------------------------------------------------------------------

#: loaded into the build's Python: any connection to another host fails the build
NO_NETWORK = """
import os
import socket

# proves to the test that this guard was loaded into the build's interpreter
open(os.environ["LASTRESORT_NO_NETWORK_MARK"], "w").close()

_connect = socket.socket.connect


def _local_only(self, address):
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and host not in ("127.0.0.1", "::1", "localhost") and "/" not in host:
        raise OSError(f"the docs build tried the network: {address!r}")
    return _connect(self, address)


socket.socket.connect = _local_only
_getaddrinfo = socket.getaddrinfo


def _no_lookup(host, *args, **kwargs):
    if host not in (None, "127.0.0.1", "::1", "localhost"):
        raise OSError(f"the docs build tried the network: {host!r}")
    return _getaddrinfo(host, *args, **kwargs)


socket.getaddrinfo = _no_lookup
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built as ``make docs-site`` builds it, with the network refused."""
    tmp = tmp_path_factory.mktemp("docsite")
    (tmp / "sitecustomize.py").write_text(NO_NETWORK, encoding="utf-8")
    out = tmp / "site"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp), os.environ.get("PYTHONPATH", "")]),
        "NO_MKDOCS_2_WARNING": "1",
        "LASTRESORT_NO_NETWORK_MARK": str(tmp / "guarded"),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, (
        f"mkdocs build --strict failed (`make docs-site` shows the same):\n{proc.stderr[-6000:]}\n"
        "A new page goes into mkdocs.yml's nav; a link to a file outside docs/ (other than "
        "a README) cannot work on the site: link a docs page, or name the file in `code`."
    )
    assert (tmp / "guarded").exists(), "the build ran without the network guard"
    return out


@pytest.mark.slow
def test_the_network_guard_refuses_a_connection(tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text(NO_NETWORK, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-c", "import socket; socket.create_connection(('192.0.2.1', 443), 1)"],
        env={
            **os.environ,
            "PYTHONPATH": str(tmp_path),
            "LASTRESORT_NO_NETWORK_MARK": str(tmp_path / "guarded"),
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode != 0
    assert "the docs build tried the network" in proc.stderr


@pytest.mark.slow
def test_site_has_every_page(site: Path) -> None:
    for page in nav_pages():
        assert (site / page).with_suffix(".html").is_file(), page


@pytest.mark.slow
def test_generated_pages_render_their_mermaid_diagrams(site: Path) -> None:
    for md in [*sorted((DOCS / "generated").glob("*.md")), DOCS / "diagrams.md"]:
        fences = len(re.findall(r"^```mermaid\s*$", md.read_text(encoding="utf-8"), re.M))
        built = (site / md.relative_to(DOCS)).with_suffix(".html").read_text(encoding="utf-8")
        rendered = built.count('<pre class="mermaid"><code>')
        assert fences >= 1 or md.name == "diagrams.md", f"{md.name} has no Mermaid diagram"
        assert rendered == fences, f"{md.name}: {fences} mermaid fences, {rendered} rendered"
        assert "stateDiagram-v2" in html.unescape(built)


@pytest.mark.slow
def test_site_has_search(site: Path) -> None:
    index = json.loads((site / "search" / "search_index.json").read_text(encoding="utf-8"))
    assert index["config"]["lang"] == ["en", "nl"]  # Dutch terms are stemmed as Dutch
    assert (site / "assets" / "javascripts" / "lunr" / "min" / "lunr.nl.min.js").is_file()
    text = " ".join(doc["text"] for doc in index["docs"])
    for word in ("Veilig Thuis", "Jeugdconsul", "lastresort_deliver", "warm handover"):
        assert word in text, word


def _documented(site: Path, page: str) -> set[str]:
    built = (site / "api" / page).read_text(encoding="utf-8")
    return set(re.findall(r'id="([\w.]+)"', built))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("page", "module"),
    [
        ("lastresort.html", lr),
        ("testing.html", lastresort.testing),
        ("clock.html", lastresort.clock),
        ("errors.html", lastresort.errors),
        ("hookspecs.html", lastresort.engine.hookspecs),
    ],
)
def test_api_reference_documents_the_public_surface(site: Path, page: str, module: object) -> None:
    ids = _documented(site, page)
    name = module.__name__  # type: ignore[attr-defined]
    public = getattr(module, "__all__", None) or [
        n for n in vars(module) if n.startswith("lastresort_")
    ]
    missing = sorted(n for n in public if f"{name}.{n}" not in ids)
    assert not missing, f"api/{page} does not document {missing}"


@pytest.mark.slow
def test_api_reference_shows_attrs_signatures_and_sphinx_params(site: Path) -> None:
    built = html.unescape((site / "api" / "lastresort.html").read_text(encoding="utf-8"))
    text = re.sub(r"<[^>]+>", "", built)
    # attrs writes Actor.__init__ at run time: the reference shows its real parameters
    assert re.search(r"Actor\(\s*role:\s*str,\s*id:", text), "Actor's signature is missing"
    # a :param: line is rendered as a parameter table, not left as raw text
    assert ":param " not in text
