"""A fingerprint of code: what a function or class computes, written out without its comments, docstrings and
layout, hashed. The model cache puts the fingerprint of an objective's formula into the objective's key, so an
edited formula retrains its models by itself, while a comment or a rewrapped line does not.

A formula is its loss function (or objective class) and every function, class and constant of its package that
the loss reaches by name, however deep: `trades_loss` brings its inner maximisation and its KL term along.

Tokens, not the syntax tree: `ast.dump` changes between Python versions, the token stream of the same source does
not (with each f-string kept whole, as 3.11 tokenizes it), so a key (and a committed model found by it) does not
depend on the interpreter (tests/unit/test_fingerprint.py compares 3.11 with the other Pythons it finds).
"""
from __future__ import annotations

import ast
import hashlib
import inspect
import io
import textwrap
import tokenize
from functools import lru_cache

_SKIPPED = (tokenize.COMMENT, tokenize.NL, tokenize.ENCODING, tokenize.ENDMARKER)
# Blocks and statements as marks, so that the indentation's width and the line breaks do not count.
_MARKS = {tokenize.INDENT: "{", tokenize.DEDENT: "}", tokenize.NEWLINE: ";"}
_BLOCKS = (tokenize.INDENT, tokenize.DEDENT)  # kept on a docstring's line too: they open and close a block
_FSTRING_START = getattr(tokenize, "FSTRING_START", None)  # Python 3.12 and later
_FSTRING_END = getattr(tokenize, "FSTRING_END", None)


def _docstring_lines(tree: ast.AST) -> set[int]:
    """The source lines of every docstring in `tree` (module, class and function ones)."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                lines.update(range(first.lineno, first.end_lineno + 1))
    return lines


def normalised_source(obj: object) -> str:
    """The source of a function or class as its tokens, one space apart, without comments and docstrings."""
    return normalise(textwrap.dedent(inspect.getsource(obj)))


def normalise(source: str) -> str:
    """`source` as its tokens, one space apart, without comments and docstrings (an f-string is one token, as
    Python 3.11 reads it: 3.12 splits it into parts, which would change the fingerprint with the interpreter)."""
    docstrings = _docstring_lines(ast.parse(source))
    lines = source.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    at = lambda pos: offsets[pos[0] - 1] + pos[1]  # (row, col) -> index into `source`
    out: list[str] = []
    depth, start = 0, None
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == _FSTRING_START:
            depth, start = depth + 1, start if depth else tok.start
            continue
        if depth:
            if tok.type == _FSTRING_END:
                depth -= 1
                if not depth:
                    out.append(source[at(start):at(tok.end)])
            continue
        if tok.type not in _SKIPPED and (tok.start[0] not in docstrings or tok.type in _BLOCKS):
            out.append(_MARKS.get(tok.type, tok.string))
    return " ".join(out)


def _names(obj: object) -> set[str]:
    return {node.id for node in ast.walk(ast.parse(textwrap.dedent(inspect.getsource(obj))))
            if isinstance(node, ast.Name)}


def _code_in(value: object, package: str, leave_out: tuple[str, ...]) -> list[object]:
    """The functions and classes of `package` in a global `value` (itself, or inside a dict, list or tuple)."""
    if isinstance(value, dict):
        return [c for v in value.values() for c in _code_in(v, package, leave_out)]
    if isinstance(value, (list, tuple)):
        return [c for v in value for c in _code_in(v, package, leave_out)]
    if (inspect.isfunction(value) or inspect.isclass(value)) and value.__module__.startswith(package) \
            and value.__module__ not in leave_out:
        return [value]
    return []


def _constant(value: object) -> bool:
    return isinstance(value, (bool, int, float, str)) or (
        isinstance(value, tuple) and all(isinstance(v, (bool, int, float, str)) for v in value))


@lru_cache(maxsize=None)
def formula_fingerprint(root: object, package: str, leave_out: tuple[str, ...] = ()) -> str:
    """The fingerprint of `root` and of everything of `package` (minus the modules `leave_out`) it reaches by
    name, with the values of the constants it reads: a change to any of them changes the fingerprint."""
    parts: dict[str, str] = {}
    stack = [root]
    while stack:
        obj = stack.pop()
        name = f"{obj.__module__}.{obj.__qualname__}"
        if name in parts:
            continue
        parts[name] = normalised_source(obj)
        module_globals = vars(inspect.getmodule(obj))
        for ref in sorted(_names(obj)):
            value = module_globals.get(ref)
            if _constant(value):
                parts.setdefault(f"{obj.__module__}.{ref}", repr(value))
            stack += _code_in(value, package, leave_out)
    text = "\n".join(f"{k}: {parts[k]}" for k in sorted(parts))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
