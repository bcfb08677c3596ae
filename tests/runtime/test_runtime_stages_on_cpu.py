"""The controller's shape: each phase is a stage that reaches the driver only through the typed
``Controller`` interface, and no runtime function grows past 60 lines."""
import ast
import inspect
from pathlib import Path

from wmsd_ray.runtime.driver import Driver
from wmsd_ray.runtime.stage import Controller

RUNTIME = Path(__file__).resolve().parents[2] / "wmsd_ray" / "runtime"
STAGES = ("propose.py", "distill.py", "rl.py", "evaluate.py")


def test_no_runtime_function_is_longer_than_sixty_lines():
    long = [f"{p.name}:{f.name} ({f.end_lineno - f.lineno + 1})" for p in RUNTIME.glob("*.py")
            for f in ast.walk(ast.parse(p.read_text())) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
            and f.end_lineno - f.lineno + 1 > 60]
    assert not long


def test_stages_touch_no_private_member_of_another_object():
    reaches = []
    for name in STAGES:
        for node in ast.walk(ast.parse((RUNTIME / name).read_text())):
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                    and not (isinstance(node.value, ast.Name) and node.value.id == "self")):
                reaches.append(f"{name}:{node.lineno} .{node.attr}")
    assert not reaches


def test_the_driver_provides_every_member_of_the_controller_interface():
    methods = [n for n, v in vars(Controller).items() if inspect.isfunction(v) and not n.startswith("_")]
    assert {"send_batch", "open_learner", "checkpoint", "pool"} <= set(methods)
    assert all(callable(getattr(Driver, n, None)) for n in methods), [n for n in methods if not hasattr(Driver, n)]
    assigned = {t.attr for node in ast.walk(ast.parse(inspect.getsource(Driver))) if isinstance(node, ast.Assign)
                for target in node.targets for t in ast.walk(target)
                if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self"}
    missing = set(Controller.__annotations__) - assigned
    assert not missing
