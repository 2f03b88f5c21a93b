"""docs/walkthrough.md cites code by file and symbol; these tests keep the citations true.

Conventions checked (see the walkthrough's "How references are written"):
  * inline:  `file.py` `Symbol` or `file.py` `Class.method` (two code spans, one space apart):
             the file exists and defines the symbol (a function, class, method, class attribute or
             module-level name), found with ast;
  * `file.py` alone and `module.Symbol` (e.g. `cofinetune.Policy`) in code spans: the same checks;
  * fences:  a ```python block's info string names the file and optionally a symbol
             (```python model.py hw_pool); every non-blank line of the block occurs verbatim
             (whitespace-stripped) as a line of that symbol's source (of the whole file without a
             symbol). A ```python block without a file is an error. Other fences are not quotes.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "walkthrough.md"

CITE = re.compile(r"`([\w/]+\.py)`[ \t]+`([A-Za-z_][\w.]*)`")
FILE = re.compile(r"`([\w/]+\.py)`")
DOTTED = re.compile(r"`([A-Za-z_]\w*)\.([A-Za-z_][\w.]*)`")
FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})(.*)$")


class Source:
    """One Python file: its lines and an ast index of dotted symbol -> (first line, last line)."""

    def __init__(self, path: Path):
        self.text = path.read_text()
        self.lines = self.text.splitlines()
        self.symbols: dict[str, tuple[int, int]] = {}
        self._index(ast.parse(self.text).body, "")

    def _index(self, body, prefix):
        for node in body:
            span = (min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])]), node.end_lineno)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                self.symbols[prefix + node.name] = span
                if isinstance(node, ast.ClassDef):
                    self._index(node.body, prefix + node.name + ".")
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for t in targets:
                    for name in ([t] if isinstance(t, ast.Name) else getattr(t, "elts", [])):
                        if isinstance(name, ast.Name):
                            self.symbols[prefix + name.id] = span

    def stripped(self, symbol: str | None) -> set[str]:
        first, last = self.symbols[symbol] if symbol else (1, len(self.lines))
        return {ln.strip() for ln in self.lines[first - 1: last]}


def sources(root: Path, fname: str) -> list[Source]:
    """The file a reference to `fname` is checked in (none when it does not exist)."""
    return [Source(root / fname)] if (root / fname).is_file() else []


def fences(lines: list[str]):
    """-> [(line number of the opening fence, info string, body lines)] for every fenced block."""
    out, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        mark, info, start, body = m.group(2), m.group(3).strip(), i + 1, []
        i += 1
        while i < len(lines) and not (lines[i].strip().startswith(mark[0] * len(mark))
                                      and set(lines[i].strip()) == {mark[0]}):
            body.append(lines[i])
            i += 1
        out.append((start, info, body))
        i += 1
    return out


def check(doc: Path, root: Path = ROOT) -> tuple[list[str], int, int]:
    """-> (errors, symbol references checked, quoted lines checked)."""
    lines = doc.read_text().splitlines()
    errors, n_refs, n_lines = [], 0, 0
    cache: dict[str, list[Source]] = {}

    def srcs(fname):
        if fname not in cache:
            cache[fname] = sources(root, fname)
        return cache[fname]

    def symbol_ok(where, fname, symbol) -> bool:
        found = srcs(fname)
        if not found:
            errors.append(f"{where}: `{fname}` does not exist")
            return False
        if symbol and not any(symbol in s.symbols for s in found):
            errors.append(f"{where}: `{fname}` `{symbol}`: no such symbol")
            return False
        return True

    blocks = fences(lines)
    inside = {k for start, _, body in blocks for k in range(start, start + len(body) + 2)}
    stems = {p.stem for p in root.glob("*.py")}
    for no, line in enumerate(lines, 1):
        if no in inside:
            continue
        where = f"{doc.name}:{no}"
        for m in CITE.finditer(line):
            n_refs += 1
            symbol_ok(where, m.group(1), m.group(2))
        for m in FILE.finditer(line):
            symbol_ok(where, m.group(1), None)
        for m in DOTTED.finditer(line):
            if m.group(1) in stems and m.group(2) != "py":
                n_refs += 1
                symbol_ok(where, m.group(1) + ".py", m.group(2))
    for start, info, body in blocks:
        where = f"{doc.name}:{start}"
        words = info.split()
        if not words or words[0] != "python":
            continue
        if len(words) < 2 or not words[1].endswith(".py"):
            errors.append(f"{where}: a ```python block must name its file: ```python FILE.py [SYMBOL]")
            continue
        fname, symbol = words[1], (words[2] if len(words) > 2 else None)
        n_refs += bool(symbol)
        if not symbol_ok(where, fname, symbol):
            continue
        homes = [s for s in srcs(fname) if symbol is None or symbol in s.symbols]
        for k, quoted in enumerate(body, start + 1):
            if not quoted.strip():
                continue
            n_lines += 1
            if not any(quoted.strip() in s.stripped(symbol) for s in homes):
                errors.append(f"{doc.name}:{k}: not found verbatim in `{fname}`"
                              f"{f' `{symbol}`' if symbol else ''}: {quoted.strip()}")
    return errors, n_refs, n_lines


def test_walkthrough_references_hold():
    assert DOC.is_file(), f"{DOC} is missing"
    errors, n_refs, n_lines = check(DOC)
    assert not errors, "stale references in docs/walkthrough.md:\n" + "\n".join(errors)
    assert n_refs >= 40 and n_lines >= 40, (n_refs, n_lines)   # the parser really saw the citations


@pytest.mark.parametrize("old, new, expect", [
    ("`model.py` `hw_pool`", "`model.py` `hw_pool_gone`", "no such symbol"),              # symbol renamed
    ("`cofinetune.py` `Policy.select_action`", "`cofinetune.py` `Policy.select`", "no such symbol"),
    ("\n```python model.py hw_pool\n", "\n```python model.py QFormer\n", "not found verbatim"),  # line moved
    ("return zp.mean(3), zp.mean(4)", "return zp.mean(2), zp.mean(4)", "not found verbatim"),  # line edited
    ("\n```python model.py hw_pool\n", "\n```python\n", "must name its file"),
    ("`training.py` `adamw`", "`training.py` `adamw_gone`", "no such symbol"),
    ("`data.py` `ClipView`", "`sim2.py` `ClipView`", "does not exist"),
])
def test_checker_catches_rot(tmp_path, old, new, expect):
    """Break one reference in a copy of the walkthrough: the checker must report it."""
    text = DOC.read_text()
    assert old in text, f"the walkthrough no longer contains {old!r}; update this test"
    broken = tmp_path / "walkthrough.md"
    broken.write_text(text.replace(old, new, 1))
    errors, _, _ = check(broken)
    assert any(expect in e for e in errors), errors


