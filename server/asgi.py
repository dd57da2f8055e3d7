"""The ASGI entry point for servers that start several worker processes.

Each worker process calls :func:`app_from_environment` (uvicorn's ``--factory``), reads the
same environment as the ``reppu serve`` that started it, and opens its own database engine.
"""

import gc

from litestar import Litestar

from server.app import create_app
from server.settings import load_settings

GC_THRESHOLDS = (100_000, 20, 20)
"""The cyclic garbage collector's thresholds in a served worker (Python's are 700, 10, 10).

A worker holding many live streams keeps millions of objects that live as long as their
streams, and with the default thresholds the collector walks all of them again and again: in
``scripts/bench_live.py`` with 20,000 streams, half of a worker's time while streams opened
and while a poke reached them went to collecting (docs/benchmarks.md, "Live streams"). Fewer
young collections, and the objects made at start-up frozen out of the collector's sight, take
that away; garbage with reference cycles is still collected, a little later."""


def tune_gc() -> None:
    """Set :data:`GC_THRESHOLDS` and freeze what exists now (modules, the app) out of the
    collector's walks."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def app_from_environment() -> Litestar:
    app = create_app(load_settings())
    tune_gc()
    return app
