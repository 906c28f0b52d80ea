#!/usr/bin/env python3
"""Fails when the modules of a crate import each other in a cycle.

Usage: module-cycles.py CRATE_SRC_DIR...

Each source file is one node (inline modules such as `mod tests { … }` or `mod ssr { … }`
belong to their file). There is an edge from a file to every file whose module it names in a
path — `use crate::a::b`, `crate::a::b::f()`, `super::x`, `self::x` — outside comments and
string literals. A file's own `mod child;` declarations are not edges: a parent that only
declares and re-exports its children is fine; a parent that *uses* a child that uses it back
is a cycle. The same check then runs with each top-level module (a file and everything under
it, the crate root left out) as one node, so two layers cannot lean on each other through
different files either. Prints every cycle (each strongly connected component of two nodes or
more) and exits 1 if there is one.
"""

import os
import re
import sys


def module_of(src, path):
    rel = os.path.relpath(path, src)[:-3].split(os.sep)
    if rel[-1] in ("lib", "main") and len(rel) == 1:
        return ()
    if rel[-1] == "mod":
        rel = rel[:-1]
    return tuple(rel)


def strip(text):
    """The code without comments and string/char literals (kept the same length per line)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            i = j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    if text[i] == "\n":
                        out.append("\n")
                    i += 1
        elif c == "r" and re.match(r'r#*"', text[i:i + 10]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'r(#*)"', text[i:])
            end = '"' + m.group(1)
            j = text.find(end, i + len(m.group(0)))
            j = n if j < 0 else j + len(end)
            out.append('""')
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('""')
            i = j + 1
        elif c == "'" and re.match(r"'(\\.|[^\\'])'", text[i:i + 4]):
            m = re.match(r"'(\\.[^']*|[^\\'])'", text[i:])
            out.append("' '")
            i += len(m.group(0))
        else:
            out.append(c)
            i += 1
    return "".join(out)


INLINE_MOD = re.compile(r"\bmod\s+[A-Za-z_][A-Za-z0-9_]*\s*\{")


def inline_depths(code):
    """For each position of `code`, how many inline modules (`mod x { … }`) enclose it, as a
    function of the position."""
    opens = {m.end() - 1 for m in INLINE_MOD.finditer(code)}
    marks, stack, depth = [], [], 0
    for i, c in enumerate(code):
        if c == "{":
            stack.append(i in opens)
            if i in opens:
                depth += 1
                marks.append((i, depth))
        elif c == "}" and stack:
            if stack.pop():
                depth -= 1
                marks.append((i, depth))

    def at(pos):
        d = 0
        for i, value in marks:
            if i > pos:
                break
            d = value
        return d

    return at


# (`pub(crate)` and `pub(super)` are visibilities, not paths.)
PATH = re.compile(r"(?<!pub\()\b((?:crate|super|self)(?:\s*::\s*(?:super|[A-Za-z_][A-Za-z0-9_]*))*)")
USE_GROUP = re.compile(r"\buse\s+((?:crate|super|self)[^;]*);", re.S)
REEXPORT = re.compile(r"\bpub(?:\([a-z]+\))?\s+use\s+([^;]*);", re.S)


def expand_use(tree):
    """`a::{b, c::{d}}` → ["a::b", "a::c::d"]."""
    tree = re.sub(r"\s+", "", tree)
    depth = 0
    for i, ch in enumerate(tree):
        if ch == "{":
            if depth == 0:
                head = tree[:i]
                inner = tree[i + 1:tree.rindex("}")]
                parts, level, start = [], 0, 0
                for k, c2 in enumerate(inner):
                    if c2 == "{":
                        level += 1
                    elif c2 == "}":
                        level -= 1
                    elif c2 == "," and level == 0:
                        parts.append(inner[start:k])
                        start = k + 1
                parts.append(inner[start:])
                out = []
                for p in parts:
                    if p:
                        out += [head + q for q in expand_use(p)]
                return out
            depth += 1
    return [tree.split(" as ")[0]]


def resolve(current, path, modules, reexports=None, inline=0):
    """The file module `path` leads to, from `current` (`inline` modules deep inside its file:
    their `super` is the file itself)."""
    parts = [p.strip() for p in path.split("::")]
    if parts[0] == "crate":
        base, rest = [], parts[1:]
    else:
        base, rest = list(current), parts
        while rest and rest[0] in ("self", "super"):
            if rest[0] == "super":
                if inline:
                    inline -= 1
                else:
                    base = base[:-1]
            rest = rest[1:]
    target = tuple(base)
    for p in rest:
        if target + (p,) in modules:
            target = target + (p,)
        elif reexports and p in reexports.get(target, {}):
            target = reexports[target][p]
        else:
            break
    return target


def graph(src):
    """The crate's files (module path → file) and the import edges between them."""
    files = {}
    for root, _, names in os.walk(src):
        for name in names:
            # A binary beside the library uses it by the crate's name, never as `crate::`.
            if root == src and name == "main.rs" and "lib.rs" in names:
                continue
            if name.endswith(".rs"):
                path = os.path.join(root, name)
                files[module_of(src, path)] = path
    modules = set(files)
    codes = {m: strip(open(path, encoding="utf-8").read()) for m, path in files.items()}
    # A module's re-exports (`pub use child::Item;`): a path through them leads to the module
    # the item comes from, and the re-export itself is no edge (like a `mod` declaration).
    reexports = {m: {} for m in modules}
    for module, code in codes.items():
        for group in REEXPORT.finditer(code):
            for p in expand_use(group.group(1)):
                name = p.split("::")[-1]
                full = p if p.split("::")[0] in ("crate", "super", "self") else "self::" + p
                reexports[module][name] = resolve(module, full, modules)
    edges = {m: set() for m in modules}
    for module, code in codes.items():
        code = REEXPORT.sub(" ", code)
        depth = inline_depths(code)
        paths = []
        for group in USE_GROUP.finditer(code):
            paths += [(p, depth(group.start())) for p in expand_use(group.group(1))]
        code_wo_use = USE_GROUP.sub(lambda m: " " * len(m.group(0)), code)
        paths += [(m.group(1), depth(m.start())) for m in PATH.finditer(code_wo_use)]
        for p, inline in paths:
            target = resolve(module, p, modules, reexports, inline)
            if target != module and target in modules and target != ():
                edges[module].add(target)
            elif target == () and module != ():
                edges[module].add(())
    return files, edges


def top_level(src, files, edges):
    """The same graph with each top-level module (a file and everything under it) as one
    node; the crate root is left out (it declares every module)."""
    nodes = {}
    for module in files:
        if module:
            directory = os.path.join(src, module[0])
            nodes[(module[0],)] = directory + "/" if os.path.isdir(directory) else directory + ".rs"
    top = {node: set() for node in nodes}
    for a, targets in edges.items():
        for b in targets:
            if a and b and a[0] != b[0]:
                top[(a[0],)].add((b[0],))
    return nodes, top


def cycles(src, top=False):
    files, edges = graph(src)
    if top:
        files, edges = top_level(src, files, edges)
    modules = set(files)
    # Tarjan's strongly connected components.
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(os.path.relpath(files[m], src) for m in component))

    sys.setrecursionlimit(10000)
    for v in sorted(modules):
        if v not in index:
            visit(v)
    return out


def main():
    failed = False
    for src in sys.argv[1:]:
        found = cycles(src)
        layers = cycles(src, top=True)
        for component in found:
            print(f"{src}: import cycle among {len(component)} files: {', '.join(component)}")
        for component in layers:
            print(f"{src}: import cycle among {len(component)} top-level modules: {', '.join(component)}")
        if found or layers:
            failed = True
        else:
            print(f"{src}: no import cycle between files or between top-level modules")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
