"""``reppu demo``: a deterministic, realistic demo city, generated and bulk-loaded.

``generate_city`` builds the rows without I/O; ``load_city`` writes them through the database
drivers' bulk paths; ``load_demo_city`` does both for the CLI.
"""

from server.demo.city import City
from server.demo.generate import DEMO_LOGINS, DEMO_PASSWORD, generate_city
from server.demo.load import DemoCityError, DemoSummary, ensure_empty, load_city, load_demo_city

__all__ = [
    "DEMO_LOGINS",
    "DEMO_PASSWORD",
    "City",
    "DemoCityError",
    "DemoSummary",
    "ensure_empty",
    "generate_city",
    "load_city",
    "load_demo_city",
]
