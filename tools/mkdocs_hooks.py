"""mkdocs hooks of the documentation site (mkdocs.yml ``hooks:``).

The Markdown files are written to be read in the repository too (on a forge or in an
editor), so they link files by their repository path: ``../plugins/rotterdam/README.md``,
``docs/store.md`` from README.md. The site holds the top-level README and every
plugin's README as pages of its own (``readme.md``, ``plugins/<name>.md``) and rewrites
those links to them, so one link works in both places. A link to any other file outside
``docs/`` is left alone and fails the strict build.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent

# a Markdown inline link's target up to an optional #anchor; images too (![..](..))
LINK = re.compile(r"\]\((?P<target>[^)\s#]+)(?P<anchor>#[^)\s]*)?\)")

#: page of the site -> the repository file it shows (relative to ROOT)
_EXTRA: dict[str, str] = {}


def _extra_pages() -> dict[str, str]:
    """The README pages the site adds: site path -> repository path."""
    pages = {"readme.md": "README.md"}
    for readme in sorted(ROOT.glob("plugins/*/README.md")):
        pages[f"plugins/{readme.parent.name}.md"] = readme.relative_to(ROOT).as_posix()
    return pages


def on_files(files: Files, config: Any) -> Files:
    """Add the README pages."""
    _EXTRA.clear()
    _EXTRA.update(_extra_pages())
    for src_uri, repo_path in _EXTRA.items():
        content = (ROOT / repo_path).read_text(encoding="utf-8")
        files.append(File.generated(config, src_uri, content=content))
    return files


def _repo_path(src_uri: str, docs_dir: str) -> str:
    """Where a page's Markdown lives in the repository (relative to ROOT)."""
    if src_uri in _EXTRA:
        return _EXTRA[src_uri]
    docs = Path(docs_dir).resolve().relative_to(ROOT).as_posix()
    return f"{docs}/{src_uri}"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    """Point links at repository files to the pages that show them on the site."""
    docs = Path(config["docs_dir"]).resolve().relative_to(ROOT).as_posix()
    by_repo_path = {repo: site for site, repo in _EXTRA.items()}
    here = _repo_path(page.file.src_uri, config["docs_dir"])
    site_here = posixpath.dirname(page.file.src_uri)

    def rewrite(match: re.Match[str]) -> str:
        target = match.group("target")
        if "://" in target or target.startswith(("/", "mailto:")):
            return match.group(0)
        repo_target = posixpath.normpath(posixpath.join(posixpath.dirname(here), target))
        if repo_target in by_repo_path:
            site_target = by_repo_path[repo_target]
        elif repo_target.startswith(f"{docs}/"):
            site_target = repo_target.removeprefix(f"{docs}/")
        else:
            return match.group(0)
        new = posixpath.relpath(site_target, site_here or ".")
        return f"]({new}{match.group('anchor') or ''})"

    return LINK.sub(rewrite, markdown)
