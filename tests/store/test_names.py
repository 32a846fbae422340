"""The store's names: one class called Plan in the code base (the plan limits), and no
helpers nobody calls."""

from __future__ import annotations

import importlib
import pkgutil

import app.store
from app.kernel import hashing, plans
from app.store import access, computed, query, sql


def test_only_the_plan_limits_class_is_called_plan() -> None:
    for info in pkgutil.iter_modules(app.store.__path__):
        module = importlib.import_module(f"app.store.{info.name}")
        for name, value in vars(module).items():
            if isinstance(value, type) and value.__module__ == module.__name__:
                assert value.__name__.lstrip("_") != "Plan", f"{module.__name__}.{name}"
    assert plans.Plan.__module__ == "app.kernel.plans"
    assert computed.EvaluationPlan.__name__ in computed.__all__
    assert query._QueryPlan.__doc__


def test_unused_helpers_are_gone() -> None:
    assert not hasattr(access, "read_scope")
    assert not hasattr(sql, "forget_indexes")
    assert hashing.__all__ == ["hash_password", "verify_password", "hash_token"]
    assert not hasattr(hashing, "sign") and not hasattr(hashing, "constant_time_equal")
