"""Sign-in beyond the demo's passwords: OpenID Connect providers (MPASSid, Suomi.fi),
matching a signed-in identity to a roster person, and one-time activation codes.
``docs/identity.md`` describes the flows."""
