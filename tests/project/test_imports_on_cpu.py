"""The packages of wmsd_ray import one another without cycles (entry points aside: nothing
imports a ``__main__``), so each can be read, tested and loaded on its own."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def import_graph(root: Path = ROOT / "wmsd_ray") -> dict[str, set[str]]:
    """wmsd_ray.<package> -> the wmsd_ray packages it imports (from any of its modules)."""
    graph: dict[str, set[str]] = {}
    for path in root.rglob("*.py"):
        if path.name == "__main__.py":
            continue
        module = _module(path)
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else []))
                targets = [target] + [f"{target}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            for t in targets:
                if t.startswith("wmsd_ray.") and _package(t) != _package(module):
                    graph.setdefault(_package(module), set()).add(_package(t))
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> list[str]:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path + [node, nxt]
            if nxt not in state and (found := visit(nxt, path + [node])):
                return found
        state[node] = 2
        return []

    for start in sorted(graph):
        if start not in state and (found := visit(start, [])):
            return found
    return []


def test_no_import_cycle_among_wmsd_ray_packages():
    graph = import_graph()
    assert len(graph) > 8 and "wmsd_ray.config" in graph and "wmsd_ray.names" in graph["wmsd_ray.config"]
    assert find_cycle(graph) == [], find_cycle(graph)
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]  # the check can fail
