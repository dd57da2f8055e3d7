"""The ASGI entry point for servers that start several worker processes.

Each worker process calls :func:`app_from_environment` (uvicorn's ``--factory``), reads the
same environment as the ``reppu serve`` that started it, and opens its own database engine.
"""

from litestar import Litestar

from server.app import create_app
from server.settings import load_settings


def app_from_environment() -> Litestar:
    return create_app(load_settings())
