"""The wire contract: msgspec Structs and closed vocabularies shared by server, engines and clients.

Nothing here does I/O. Evolution follows msgspec's rules: new fields get defaults, nothing is
reordered or retyped, so that an older client keeps decoding what a newer server sends.
"""
