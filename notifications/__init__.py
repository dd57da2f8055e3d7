"""The notification fan-out engine (Web Push, apprise). Knows nothing of HTTP or the ORM.

Empty until the fan-out issue lands; listed now so that the layer boundaries are checked
from the first commit.
"""
