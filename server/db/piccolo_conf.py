"""The module Piccolo looks up through ``PICCOLO_CONF``.

Piccolo finds its engine by importing this module and reading ``DB`` each time it needs one
(the migration runner does). Reppu's processes set ``DB`` to the engine they built from their
settings (``server.db.engine.bind_engine``). Only when nobody has, as when a developer runs
the Piccolo CLI to write a migration (``piccolo migrations new reppu --auto``), is ``DB``
built here from the environment, on first use rather than at import.
"""

from typing import Any

from piccolo.conf.apps import AppRegistry
from piccolo.engine.base import Engine

APP_REGISTRY = AppRegistry(apps=["server.db.piccolo_app"])


def __getattr__(name: str) -> Engine[Any]:
    if name != "DB":
        raise AttributeError(name)
    from server.db.engine import build_engine
    from server.settings import load_settings

    engine = build_engine(load_settings())
    globals()["DB"] = engine
    return engine
