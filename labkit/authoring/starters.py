"""Can a learner finish a starter from its TODOs alone?

A starter replaces each solution block with its TODO. Whatever that block
creates and later code relies on (a variable, a function, an import, a
folder or file on disk) must therefore be asked for in the TODO, or be made
outside the block; otherwise the learner writes what the TODO says and the
next cell fails on something they were never told to make. ``problems``
lists every such gap in one lab source, one sentence each.
"""
from __future__ import annotations

import ast
import builtins
import re
import textwrap
from dataclasses import dataclass, field

from .notebooks import BEGIN, END, parse

BUILTINS = set(dir(builtins)) | {"display", "get_ipython"}  # the notebook's own globals too

# Calls that create a folder, or write a file, at their path argument (or receiver).
MAKES_FOLDER_METHODS = {"mkdir"}
WRITES_FILE_METHODS = {"write_text", "write_bytes", "touch"}
MAKES_FOLDER_FUNCS = {"makedirs", "mkdir", "copytree"}
WRITES_FILE_FUNCS = {"copy", "copyfile", "copy2", "move"}  # their second argument
OPENS_FUNCS = {"open", "ZipFile", "TarFile"}  # written when the mode has w, a or x
# Uses of a path that need it to exist on disk (a receiver's method, or an argument to any call but these).
READS_METHODS = {"read_text", "read_bytes", "open", "exists", "is_file", "is_dir", "iterdir", "glob", "rglob",
                 "stat", "write_text", "write_bytes", "touch"}
PURE_CALLS = {"print", "str", "repr", "len", "format", "Path", "PurePath"}


@dataclass
class Block:
    todo: str  # the comment lines just above the block
    code: str
    bound: set[str] = field(default_factory=set)
    used: set[str] = field(default_factory=set)
    writes: list[ast.expr] = field(default_factory=list)
    reads: list[ast.expr] = field(default_factory=list)


def split_cell(source: str) -> tuple[str, list[Block]]:
    """A code cell's visible code (each block replaced by ``pass``) and its solution blocks."""
    visible, blocks, current, comments = [], [], None, []
    for line in source.splitlines():
        stripped = line.strip()
        if stripped == BEGIN:
            current = []
            indent = line[: len(line) - len(line.lstrip())]
            visible.append(f"{indent}pass")
            blocks.append(Block("\n".join(comments), ""))
        elif stripped == END:
            blocks[-1].code = textwrap.dedent("\n".join(current or []))
            current = None
        elif current is not None:
            current.append(line)
        else:
            visible.append(line)
            comments = comments + [stripped] if stripped.startswith("#") else []
    return "\n".join(visible), blocks


# -- names ----------------------------------------------------------------------

def names(nodes: list[ast.AST]) -> tuple[set[str], set[str]]:
    """(names bound, free names used) at the top level of ``nodes``; function and comprehension scopes respected."""
    bound: set[str] = set()
    used: set[str] = set()

    def inner(body: list[ast.AST], local: set[str]) -> None:
        b, u = names(body)
        used.update(u - b - local)

    def visit(node: ast.AST) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            if not isinstance(node, ast.Lambda):
                bound.add(node.name)
                for d in node.decorator_list:
                    visit(d)
            args = node.args
            for default in args.defaults + [d for d in args.kw_defaults if d is not None]:
                visit(default)
            params = {a.arg for a in args.posonlyargs + args.args + args.kwonlyargs}
            params |= {a.arg for a in (args.vararg, args.kwarg) if a}
            inner(node.body if isinstance(node.body, list) else [node.body], params)
        elif isinstance(node, ast.ClassDef):
            bound.add(node.name)
            for child in node.bases + node.keywords + node.decorator_list:
                visit(child)
            inner(node.body, set())
        elif isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            targets = {n.id for g in node.generators for n in ast.walk(g.target) if isinstance(n, ast.Name)}
            parts = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
            for g in node.generators:
                parts += [g.iter, *g.ifs]
            inner(parts, targets)
        elif isinstance(node, ast.Name):
            (used if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names if a.name != "*")
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
            for child in ast.iter_child_nodes(node):
                visit(child)
        else:
            for child in ast.iter_child_nodes(node):
                visit(child)

    for n in nodes:
        visit(n)
    return bound, used


# -- paths ----------------------------------------------------------------------

def _mode(call: ast.Call, position: int) -> str:
    args = list(call.args[position:position + 1]) + [k.value for k in call.keywords if k.arg == "mode"]
    return next((a.value for a in args if isinstance(a, ast.Constant) and isinstance(a.value, str)), "r")


def paths(tree: ast.AST) -> tuple[list[ast.expr], list[ast.expr], dict[str, ast.expr]]:
    """(paths written or made, paths that must exist, simple ``name = expr`` aliases) in ``tree``."""
    writes, reads, aliases = [], [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            aliases[node.targets[0].id] = node.value
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        attr = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        method_on = func.value if isinstance(func, ast.Attribute) else None
        if method_on is not None and attr in MAKES_FOLDER_METHODS | WRITES_FILE_METHODS:
            writes.append(method_on)
        elif method_on is not None and attr == "open" and set(_mode(node, 0)) & set("wax"):
            writes.append(method_on)  # Path.open("w")
        elif attr in OPENS_FUNCS and node.args and set(_mode(node, 1)) & set("wax"):
            writes.append(node.args[0])
        elif attr in MAKES_FOLDER_FUNCS and node.args:
            writes.append(node.args[-1])
        elif attr in WRITES_FILE_FUNCS and len(node.args) >= 2:
            writes.append(node.args[1])
        if method_on is not None and attr in READS_METHODS:
            reads.append(method_on)
        if attr not in PURE_CALLS:
            reads.extend(node.args)
            reads.extend(k.value for k in node.keywords)
    return writes, reads, aliases


def key(expr: ast.expr) -> str:
    """How a path is compared: its text, with ``Path(...)`` around it dropped."""
    while (isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name) and expr.func.id in ("Path", "PurePath")
           and len(expr.args) == 1):
        expr = expr.args[0]
    return expr.value if isinstance(expr, ast.Constant) and isinstance(expr.value, str) else ast.unparse(expr)


def roots(expr: ast.expr, aliases: dict[str, ast.expr], seen: frozenset = frozenset()) -> set[str]:
    """Every path ``expr`` lies in: itself, what it was built from with ``/``, and what its name stands for."""
    out = {key(expr)}
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        parts = expr.value.rstrip("/").split("/")
        out |= {"/".join(parts[:i]) for i in range(1, len(parts))}
    elif isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Div):
        out |= roots(expr.left, aliases, seen)
    elif isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name) and expr.func.id in PURE_CALLS and expr.args:
        out |= roots(expr.args[0], aliases, seen)  # Path(x)
    elif isinstance(expr, ast.Name) and expr.id in aliases and expr.id not in seen:
        out |= roots(aliases[expr.id], aliases, seen | {expr.id})
    return out


# -- the rule -------------------------------------------------------------------

def _named(text: str, todo: str) -> bool:
    """Is ``text`` asked for in ``todo``? An ordinary word (``password``) reads as prose, so it counts only in
    backticks, as a call ``helper(x)`` or as an item of a parenthesised list ``(plan)``; a name like ``api_id``
    counts anywhere."""
    if f"`{text}`" in todo or re.search(rf"(?<![\w.]){re.escape(text)}\(", todo):  # quoted, or written as a call
        return True
    if any(text in (item.strip() for item in group.split(",")) for group in re.findall(r"\(([^()]*)\)", todo)):
        return True
    if re.fullmatch(r"[a-z]+", text):
        return False
    return re.search(rf"(?<![\w.]){re.escape(text)}(?!\w)", todo) is not None


def problems(text: str, where: str = "the source") -> list[str]:
    """One sentence per thing a solution block alone creates that code outside it needs and its TODO omits."""
    visible_trees, blocks = [], []
    for cell in parse(text):
        if cell.kind != "code":
            continue
        visible, cell_blocks = split_cell(cell.source)
        visible_trees.append(ast.parse(visible))
        for block in cell_blocks:
            tree = ast.parse(block.code)
            block.bound, block.used = names(tree.body)
            block.writes, block.reads, _ = paths(tree)
            blocks.append((block, tree))

    seen_bound, seen_used = set(), set()
    visible_writes, visible_reads, aliases = set(), [], {}
    for tree in visible_trees:
        b, u = names(tree.body)
        seen_bound |= b
        seen_used |= u
        w, r, a = paths(tree)
        visible_writes |= {key(e) for e in w}
        visible_reads += r
        aliases.update(a)
    for _, tree in blocks:
        aliases.update({k: v for k, v in paths(tree)[2].items() if k not in aliases})

    found = []
    reported: set[str] = set()
    for index, (block, _) in enumerate(blocks):
        others = [b for i, (b, _) in enumerate(blocks) if i != index]
        todo = block.todo or "(no TODO)"
        first_line = todo.splitlines()[0] if block.todo else todo
        for name in sorted(block.bound - seen_bound - BUILTINS - reported):
            needed = name in seen_used or any(name in b.used and name not in b.bound for b in others)
            makers = [b for b, _ in blocks if name in b.bound]  # a loop variable may share the name: one TODO suffices
            if needed and not any(_named(name, b.todo) for b in makers):
                reported.add(name)
                found.append(f"{where}: `{name}` is made only in the solution block under {first_line!r} and "
                             "used outside it; name it in that TODO or define it outside the block.")
        outside_reads = visible_reads + [r for b in others for r in b.reads]
        needs = set().union(*(roots(r, aliases) for r in outside_reads)) if outside_reads else set()
        for written in block.writes:
            path = key(written)
            if path in visible_writes or path in reported or path not in needs:
                continue
            if not _named(path, block.todo):
                reported.add(path)
                found.append(f"{where}: the path `{path}` is written or made only in the solution block under "
                             f"{first_line!r} and used outside it; name it in that TODO or make it outside the block.")
    return found
