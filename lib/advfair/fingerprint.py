"""A fingerprint of code: what a function or class computes, written out without its comments, docstrings and
layout, hashed. The model cache puts the fingerprint of an objective's formula into the objective's key, so an
edited formula retrains its models by itself, while a comment or a rewrapped line does not.

A formula is its loss function (or objective class) and every function, class and constant of its package that
the loss reaches by name, however deep: `trades_loss` brings its inner maximisation and its KL term along.

Tokens, not the syntax tree: `ast.dump` changes between Python versions, the token stream of the same source does
not, so a key (and a committed model found by it) does not depend on the interpreter.
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
    source = textwrap.dedent(inspect.getsource(obj))
    docstrings = _docstring_lines(ast.parse(source))
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return " ".join(_MARKS.get(tok.type, tok.string) for tok in tokens if tok.type not in _SKIPPED and
                    (tok.start[0] not in docstrings or tok.type in _BLOCKS))


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
