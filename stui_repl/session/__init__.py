"""The session layer: what a person builds up, kept across runs.

It owns the session model and its merge (model; pure), the TOML file format
and its migrations (toml; pure), the files on disk with their locks,
atomic writes and backups (store), sealing secrets (vault), the open session
in memory that records evaluations and restores them into an image (active),
and the controller that opens a session, attaches it to an image, switches,
connects, heals and saves (controller).

It may import the image and client layers and the base modules; importing
this package imports nothing else, so scripts without a session stay quick.
"""
