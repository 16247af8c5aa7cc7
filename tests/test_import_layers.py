"""The subpackages of `recognition` import each other without cycles; `recognition.parallel`
(workers and collectives) imports none of them; nothing outside `recognition.commands` (the
command lines) imports it, but the script wrapper `recognition/train.py`.

Read statically with `ast` (nothing is imported), counting function-local and relative imports.
Subpackages are discovered: every directory directly under recognition/ with an __init__.py.
"""
import ast
import os

from tests.support import REPO

PACKAGE_DIR = os.path.join(REPO, "recognition")


def subpackages(root):
    return sorted(name for name in os.listdir(root)
                  if os.path.isfile(os.path.join(root, name, "__init__.py")))


def _module_name(root, path):
    parts = os.path.relpath(path, os.path.dirname(root))[:-len(".py")].split(os.sep)
    return parts[:-1] if parts[-1] == "__init__" else parts


def _imported(node, module, is_init):
    """The absolute dotted names an import statement may refer to (modules or package members)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        package = module if is_init else module[:-1]
        base = package[:len(package) - node.level + 1]
    else:
        base = []
    target = ".".join(base + (node.module.split(".") if node.module else []))
    return [target] + [f"{target}.{alias.name}" for alias in node.names]


def import_graph(root=PACKAGE_DIR):
    """{(importer, imported): ["file:line", ...]} between subpackages of the package at `root`."""
    top = os.path.basename(root)
    subs = set(subpackages(root))
    edges = {}
    for sub in subs:
        for dirpath, _, files in os.walk(os.path.join(root, sub)):
            for name in sorted(files):
                if not name.endswith(".py"):
                    continue
                path = os.path.join(dirpath, name)
                with open(path, encoding="utf-8") as f:
                    tree = ast.parse(f.read(), path)
                module = _module_name(root, path)
                for node in ast.walk(tree):
                    if not isinstance(node, (ast.Import, ast.ImportFrom)):
                        continue
                    for target in _imported(node, module, name == "__init__.py"):
                        parts = target.split(".")
                        if len(parts) > 1 and parts[0] == top and parts[1] in subs \
                                and parts[1] != sub:
                            where = f"{os.path.relpath(path, os.path.dirname(root))}:{node.lineno}"
                            sites = edges.setdefault((sub, parts[1]), [])
                            if where not in sites:
                                sites.append(where)
    return edges


def find_cycle(edges):
    """One cycle as a list of subpackages [a, b, ..., a], or None."""
    graph = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def _describe(edges, path):
    return "\n".join(f"  {a} -> {b}: {', '.join(edges[(a, b)])}" for a, b in zip(path, path[1:]))


def test_no_import_cycle_between_subpackages():
    edges = import_graph()
    cycle = find_cycle(edges)
    assert cycle is None, ("import cycle between subpackages " + " -> ".join(cycle) + "\n"
                           + _describe(edges, cycle))


def test_parallel_imports_no_other_subpackage():
    edges = import_graph()
    assert "parallel" in subpackages(PACKAGE_DIR), "recognition/parallel/ is missing"
    bad = {key: sites for key, sites in edges.items() if key[0] == "parallel"}
    assert not bad, "recognition.parallel must import no other subpackage:\n" + "\n".join(
        f"  parallel -> {b}: {', '.join(sites)}" for (_, b), sites in sorted(bad.items()))


# thin script wrappers over one command's main(); `synthetic/__main__.py` runs its command with
# runpy, so it imports none
COMMAND_WRAPPERS = {os.path.join("recognition", "train.py")}


def test_only_commands_import_commands():
    top = os.path.basename(PACKAGE_DIR)
    commands = os.path.join(PACKAGE_DIR, "commands")
    assert os.path.isfile(os.path.join(commands, "__init__.py")), "recognition/commands/ is missing"
    bad = []
    for dirpath, _, files in os.walk(PACKAGE_DIR):
        if os.path.commonpath([dirpath, commands]) == commands:
            continue
        for name in sorted(files):
            path = os.path.join(dirpath, name)
            where = os.path.relpath(path, os.path.dirname(PACKAGE_DIR))
            if not name.endswith(".py") or where in COMMAND_WRAPPERS:
                continue
            with open(path, encoding="utf-8") as f:
                tree = ast.parse(f.read(), path)
            module = _module_name(PACKAGE_DIR, path)
            for node in ast.walk(tree):
                if isinstance(node, (ast.Import, ast.ImportFrom)) and any(
                        target.split(".")[:2] == [top, "commands"]
                        for target in _imported(node, module, name == "__init__.py")):
                    bad.append(f"{where}:{node.lineno}")
    assert not bad, "library code imports recognition.commands: " + ", ".join(bad)
