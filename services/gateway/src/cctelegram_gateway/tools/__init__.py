"""Tool definitions, one module per area; ``load_all()`` imports every module here."""

import importlib
import pkgutil


def load_all() -> None:
    """Import every tool module so each registers its tools in the shared registry."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
