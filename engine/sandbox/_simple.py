"""Expressions too simple to need a sandbox process, evaluated in place.

Most expressions of a process are a literal (``'meetings'``), a variable, an item
of one (``record['id']``, ``event.get('hangoutLink')`` on a dict), or a condition
over those. They cannot loop, call anything else, reach other attributes, import
or build anything larger than their own text over the variables, so no time or
memory limit can be exceeded: they are evaluated here,
without the round trip to a sandbox process (which pickles every variable of the
task, each way). Anything else — and anything that raises — goes to the sandbox,
which gives the usual errors.
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Mapping
from functools import lru_cache
from types import CodeType
from typing import Any

from ._restricted import GIVEN_NAMES

_MAX_SOURCE = 500  # longer expressions are not what this is for

# Node types an expression may consist of; nothing here calls, loops or multiplies.
_ALLOWED: tuple[type[ast.AST], ...] = (
    ast.Expression,
    ast.Constant,
    ast.Name,
    ast.Load,
    ast.Subscript,
    ast.Dict,
    ast.List,
    ast.Tuple,
    ast.BoolOp,
    ast.And,
    ast.Or,
    ast.UnaryOp,
    ast.Not,
    ast.USub,
    ast.Compare,
    ast.Eq,
    ast.NotEq,
    ast.Lt,
    ast.LtE,
    ast.Gt,
    ast.GtE,
    ast.Is,
    ast.IsNot,
    ast.In,
    ast.NotIn,
    ast.IfExp,
)


_DICT_GET = "_dict_get"  # user names may not start with "_": no expression can name it


def _dict_get(mapping: Any, key: Any, default: Any = None) -> Any:
    """``mapping.get(key, default)``, for a dict only (anything else: the sandbox)."""
    if type(mapping) is not dict:
        raise TypeError("only a dict's get is evaluated in place")
    return mapping.get(key, default)


class _DictGets(ast.NodeTransformer):
    """``x.get(k)`` and ``x.get(k, d)`` become ``_dict_get(x, k[, d])``; any other call
    or attribute stays, and makes the expression one for the sandbox."""

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        func = node.func
        if (
            isinstance(func, ast.Attribute)
            and func.attr == "get"
            and not node.keywords
            and 1 <= len(node.args) <= 2
            and not any(isinstance(a, ast.Starred) for a in node.args)
        ):
            return ast.Call(
                func=ast.Name(id=_DICT_GET, ctx=ast.Load()),
                args=[func.value, *node.args],
                keywords=[],
            )
        return node


class _Simple:
    def __init__(self, code: CodeType, names: frozenset[str]) -> None:
        self.code = code
        self.names = names


@lru_cache(maxsize=2048)
def _compiled(expression: str) -> _Simple | None:
    if len(expression) > _MAX_SOURCE:
        return None
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError:
        return None
    names: set[str] = set()
    for node in ast.walk(tree):  # before the rewrite: the source's own names
        if isinstance(node, ast.Name) and (node.id.startswith("_") or node.id in GIVEN_NAMES):
            return None
    tree = ast.fix_missing_locations(_DictGets().visit(tree))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            if not (isinstance(node.func, ast.Name) and node.func.id == _DICT_GET):
                return None
            continue
        if not isinstance(node, _ALLOWED):
            return None
        if isinstance(node, ast.Name):
            if node.id != _DICT_GET:
                names.add(node.id)
        elif isinstance(node, ast.Constant) and isinstance(node.value, bytes):
            return None
    return _Simple(compile(tree, "<expression>", "eval"), frozenset(names))


def evaluate_simple(expression: str, variables: Mapping[str, Any]) -> tuple[bool, Any]:
    """(True, value) when ``expression`` is simple and evaluates cleanly; else (False, None).

    The value is a copy: whoever receives it may change it without touching the
    variables it came from.
    """
    simple = _compiled(expression)
    if simple is None or not simple.names.issubset(variables.keys()):
        return False, None
    scope = {name: variables[name] for name in simple.names}
    try:
        value = eval(simple.code, {"__builtins__": {}, _DICT_GET: _dict_get}, scope)
    except Exception:  # the sandbox evaluates it again and words the error
        return False, None
    if isinstance(value, dict | list | tuple | set):
        value = copy.deepcopy(value)
    return True, value
