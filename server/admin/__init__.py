"""Admin over HTTP (``docs/admin.md``): a city's admins list a school's people, see and sign
out a person's devices, and see the sync's health. ``server/routes/admin.py`` is the thin HTTP
side; who may is the access policy's answer (``sync/policy.py``), asked in :mod:`.authority`."""
