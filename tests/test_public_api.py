"""The public API is exactly what esframework/__init__.py exports, each name documented."""

from __future__ import annotations

import inspect
import re

import attrs

import esframework
import esframework.postgres
import esframework.telemetry
import esframework.testing

PUBLIC_MODULES = (esframework, esframework.postgres, esframework.telemetry, esframework.testing)


def test_all_is_sorted_and_complete() -> None:
    """__all__ lists every public name the package defines, sorted, and nothing else."""
    for module in PUBLIC_MODULES:
        names = module.__all__
        assert names == sorted(names, key=_isort_style)
        public = {n for n in vars(module) if not n.startswith("_")}
        public -= {"annotations"}
        assert set(names) <= public
        assert all(hasattr(module, name) for name in names)


def _isort_style(name: str) -> tuple[int, str]:
    # Constants, then classes, then functions, as ruff's RUF022 sorts them.
    kind = 0 if name.isupper() else 1 if name[0].isupper() else 2
    return kind, name


def test_every_export_is_documented() -> None:
    """Every exported class and function has a docstring."""
    undocumented = [
        f"{module.__name__}.{name}"
        for module in PUBLIC_MODULES
        for name in module.__all__
        if (inspect.isclass(getattr(module, name)) or inspect.isfunction(getattr(module, name)))
        and not inspect.getdoc(getattr(module, name))
    ]
    assert undocumented == []


def test_exported_classes_present_their_public_module() -> None:
    """Classes re-exported from private modules say they live in `esframework`."""
    for name in esframework.__all__:
        obj = getattr(esframework, name)
        if inspect.isclass(obj) and obj.__module__.startswith("esframework._"):
            raise AssertionError(f"{name} claims to live in {obj.__module__}")


def test_importing_esframework_needs_neither_psycopg_nor_pytest() -> None:
    """The core imports without the optional dependencies."""
    import subprocess
    import sys

    code = (
        "import sys; import esframework; "
        "assert 'psycopg' not in sys.modules and 'pytest' not in sys.modules, sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_exported_record_documents_its_fields() -> None:
    """Each exported record (named tuple or attrs class) lists every field under Attributes:.

    The API reference renders the fields only from that section, so a field missing from it
    is missing from the docs.
    """
    undocumented = []
    for module in PUBLIC_MODULES:
        for name in module.__all__:
            obj = getattr(module, name)
            if not inspect.isclass(obj):
                continue
            if issubclass(obj, tuple) and hasattr(obj, "_fields"):
                fields = list(obj._fields)
            elif attrs.has(obj):
                fields = [field.name for field in attrs.fields(obj)]
            else:
                continue
            doc = inspect.getdoc(obj) or ""
            section = doc.partition("\nAttributes:\n")[2]
            undocumented += [
                f"{module.__name__}.{name}.{field}"
                for field in fields
                if not re.search(rf"^    {field}: \S", section, re.MULTILINE)
            ]
    assert undocumented == []
