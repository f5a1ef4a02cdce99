"""Where a problem is in a protocol file: ``file:line:col`` for a ``$.path``.

``tomllib`` and ``json`` give values without positions, so this module scans the text
itself (after the parser has accepted it) and records the position of every key, table
header, array-of-tables entry and list item under the same path the loader's problems
name: ``$.steps.arrived.deadline.after``, ``$.transitions[3].by[0]``,
``$.steps['a b']``. A problem whose path is not in the file (a required key that is
missing, a rule about a whole table) is placed at the nearest enclosing part that is.

The TOML scanner reads comments, basic and literal strings (also multi-line, with
escapes), dotted and quoted keys, ``[table]`` and ``[[array.of.tables]]`` headers (an
array of tables inside another is numbered per parent entry), arrays over several lines
and inline tables. Lines and columns count from 1; a column counts characters, not bytes.
"""

from __future__ import annotations

import bisect
import json
import re
import tomllib
from collections.abc import Iterable, Sequence

from attrs import frozen

from .conversion import _key_path

__all__ = ["Locator", "locate_json", "locate_toml", "path_of"]

#: A bare TOML key.
_BARE = re.compile(r"[A-Za-z0-9_-]+")
#: The start of a problem: its ``$.path`` up to the first ``: `` outside brackets.
_PATH = re.compile(
    r"""\$(?:\.[A-Za-z_][A-Za-z0-9_-]*|\[(?:\d+|'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")\])*"""
)


def path_of(problem: str) -> str | None:
    """The ``$.path`` a problem line starts with, or ``None``."""
    match = _PATH.match(problem)
    return match.group(0) if match else None


@frozen
class Locator:
    """The positions of one file's parts.

    :param name: the file name as given (what the location names).
    :param positions: ``$.path`` -> (line, column), both counted from 1.
    """

    name: str
    positions: dict[str, tuple[int, int]]

    def where(self, problem: str) -> str | None:
        """``name:line:col`` of the part ``problem`` is about (or of the nearest
        enclosing part in the file); ``None`` when the problem names no path."""
        path = path_of(problem)
        if path is None:
            return None
        while path not in self.positions:
            parent = _parent(path)
            if parent is None:
                return f"{self.name}:1:1"
            path = parent
        line, col = self.positions[path]
        return f"{self.name}:{line}:{col}"

    def located(self, problems: Iterable[str]) -> list[str]:
        """Each problem with its location in front: ``my.toml:42:1: $.transitions[3]...``."""
        out = []
        for problem in problems:
            where = self.where(problem)
            out.append(f"{where}: {problem}" if where else problem)
        return out


def _parent(path: str) -> str | None:
    if path == "$":
        return None
    if path.endswith("]"):
        depth, i = 0, len(path) - 1
        quote = None
        while i >= 0:  # the matching '[' (quoted keys may hold brackets)
            ch = path[i]
            if quote:
                if ch == quote and path[i - 1] != "\\":
                    quote = None
            elif ch in "'\"":
                quote = ch
            elif ch == "]":
                depth += 1
            elif ch == "[":
                depth -= 1
                if depth == 0:
                    return path[:i]
            i -= 1
        return "$"
    return path[: path.rfind(".")]


def _join(path: str, key: str | int) -> str:
    return f"{path}[{key}]" if isinstance(key, int) else _key_path(path, key)


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.starts = [0] + [m.end() for m in re.finditer(r"\r\n|\n", text)]
        self.positions: dict[str, tuple[int, int]] = {}

    def at(self, pos: int) -> tuple[int, int]:
        line = bisect.bisect_right(self.starts, pos)
        return line, pos - self.starts[line - 1] + 1

    def mark(self, path: str, pos: int) -> None:
        self.positions.setdefault(path, self.at(pos))

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def blank(self, newlines: bool, comments: bool = True) -> None:
        """Skip spaces (and newlines, and comments)."""
        text = self.text
        while self.pos < len(text):
            ch = text[self.pos]
            if ch in " \t" or (newlines and ch in "\r\n"):
                self.pos += 1
            elif comments and ch == "#":
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end
            else:
                return

    def string(self) -> str:
        """A TOML or JSON string at ``pos``; returns its value (escapes are kept
        only as far as keys need them: TOML keys are rarely escaped)."""
        text = self.text
        for quote in ('"""', "'''"):
            if text.startswith(quote, self.pos):
                end = self.pos + 3
                while True:
                    end = text.index(quote, end)
                    if quote == '"""' and _escaped(text, end):
                        end += 1
                        continue
                    break
                while text.startswith(quote[0], end + 3):  # up to two quotes close the value
                    end += 1
                value = text[self.pos + 3 : end]
                self.pos = end + 3
                return value
        quote = text[self.pos]
        end = self.pos + 1
        while text[end] != quote or (quote == '"' and _escaped(text, end)):
            end += 1
        raw = text[self.pos + 1 : end]
        self.pos = end + 1
        return self.unescape(raw) if quote == '"' and "\\" in raw else raw

    def unescape(self, raw: str) -> str:
        """The value of a basic string's text between its quotes."""
        return str(tomllib.loads(f'x = "{raw}"')["x"])


def _escaped(text: str, at: int) -> bool:
    count, i = 0, at - 1
    while i >= 0 and text[i] == "\\":
        count, i = count + 1, i - 1
    return count % 2 == 1


class _Toml(_Scanner):
    def key(self) -> list[tuple[str, int]]:
        """A (dotted) key: each part with its position."""
        parts = []
        while True:
            self.blank(newlines=False, comments=False)
            start = self.pos
            if self.peek() in "\"'":
                parts.append((self.string(), start))
            else:
                match = _BARE.match(self.text, self.pos)
                if match is None:
                    return parts
                parts.append((match.group(0), start))
                self.pos = match.end()
            self.blank(newlines=False, comments=False)
            if self.peek() != ".":
                return parts
            self.pos += 1

    def value(self, path: str) -> None:
        ch = self.peek()
        if ch in "\"'":
            self.string()
        elif ch == "[":
            self.pos += 1
            index = 0
            while True:
                self.blank(newlines=True)
                if self.peek() == "]":
                    self.pos += 1
                    return
                if self.peek() == ",":
                    self.pos += 1
                    continue
                self.mark(_join(path, index), self.pos)
                self.value(_join(path, index))
                index += 1
        elif ch == "{":
            self.pos += 1
            while True:
                self.blank(newlines=False)
                if self.peek() == "}":
                    self.pos += 1
                    return
                if self.peek() == ",":
                    self.pos += 1
                    continue
                self.pair(path)
        else:  # a number, boolean or date: up to the next delimiter
            match = re.compile(r"[^,\]}\r\n#]*").match(self.text, self.pos)
            assert match is not None
            self.pos = match.end()

    def pair(self, table: str) -> None:
        path = table
        for name, start in self.key():
            path = _join(path, name)
            self.mark(path, start)
        self.blank(newlines=False)
        self.pos += 1  # '='
        self.blank(newlines=False)
        self.value(path)

    def document(self) -> dict[str, tuple[int, int]]:
        self.mark("$", 0)
        table = "$"
        counts: dict[tuple[str, ...], int] = {}  # an array of tables' entries so far
        while True:
            self.blank(newlines=True)
            if self.pos >= len(self.text):
                return self.positions
            if self.peek() == "[":
                start = self.pos
                double = self.text.startswith("[[", self.pos)
                self.pos += 2 if double else 1
                names = [name for name, _ in self.key()]
                self.pos += 2 if double else 1
                table, prefix = "$", tuple[str, ...]()
                for j, name in enumerate(names):
                    prefix = (*prefix, name)
                    table = _join(table, name)
                    last = j == len(names) - 1
                    if double and last:
                        counts[prefix] = counts.get(prefix, 0) + 1
                        # a nested array restarts with its parent's new entry
                        for other in [
                            k for k in counts if k[: len(prefix)] == prefix and k != prefix
                        ]:
                            del counts[other]
                    if prefix in counts:
                        self.mark(table, start)
                        table = _join(table, counts[prefix] - 1)
                    self.mark(table, start)
            else:
                self.pair(table)


class _Json(_Scanner):
    def unescape(self, raw: str) -> str:
        return str(json.loads(f'"{raw}"'))

    def value(self, path: str) -> None:
        self.blank(newlines=True, comments=False)
        ch = self.peek()
        if ch == '"':
            self.string()
        elif ch == "[":
            self.pos += 1
            index = 0
            while True:
                self.blank(newlines=True, comments=False)
                if self.peek() == "]":
                    self.pos += 1
                    return
                if self.peek() == ",":
                    self.pos += 1
                    continue
                self.mark(_join(path, index), self.pos)
                self.value(_join(path, index))
                index += 1
        elif ch == "{":
            self.pos += 1
            while True:
                self.blank(newlines=True, comments=False)
                if self.peek() == "}":
                    self.pos += 1
                    return
                if self.peek() == ",":
                    self.pos += 1
                    continue
                start = self.pos
                key = _join(path, self.string())
                self.mark(key, start)
                self.blank(newlines=True, comments=False)
                self.pos += 1  # ':'
                self.value(key)
        else:
            match = re.compile(r"[^,\]}\s]*").match(self.text, self.pos)
            assert match is not None
            self.pos = match.end()


def locate_toml(text: str, name: str) -> Locator:
    """The positions of the parts of a TOML document ``tomllib`` has accepted."""
    return Locator(name, _Toml(text).document())


def locate_json(text: str, name: str) -> Locator:
    """The positions of the parts of a JSON document ``json`` has accepted."""
    scanner = _Json(text)
    scanner.blank(newlines=True, comments=False)
    scanner.mark("$", scanner.pos)
    scanner.value("$")
    return Locator(name, scanner.positions)


def locate(text: str, name: str, suffix: str) -> Locator:
    """The locator of a protocol file's text: JSON for ``.json``, TOML otherwise
    (as :func:`~lastresort.load_protocol` reads it)."""
    return locate_json(text, name) if suffix.lower() == ".json" else locate_toml(text, name)


def located(problems: Sequence[str], locator: Locator | None) -> list[str]:
    """``problems`` with their locations (unchanged without a locator)."""
    return list(problems) if locator is None else locator.located(problems)
