"""Clients of the sync protocol: the Python reference client, and the PWA under ``pwa/``.

Empty until the sync protocol lands; listed now so that the layer boundaries are checked from
the first commit.
"""
