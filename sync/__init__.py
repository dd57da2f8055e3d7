"""The sync engine and the access policy it is built on. Nothing here knows HTTP or the ORM."""
