"""OneRoster 1.2 CSV import and export with a Finnish profile (``docs/oneroster.md``).

``parse`` reads files into typed rows (pure), ``plan`` decides what changes (pure),
``apply`` writes it in one transaction through the sync write path, ``export`` writes the
database back out as a OneRoster bulk set.
"""

from server.oneroster.apply import Summary, check_oneroster, import_oneroster
from server.oneroster.export import export_oneroster
from server.oneroster.parse import ImportRefused, Problem, parse_files, read_files

__all__ = [
    "ImportRefused",
    "Problem",
    "Summary",
    "check_oneroster",
    "export_oneroster",
    "import_oneroster",
    "parse_files",
    "read_files",
]
