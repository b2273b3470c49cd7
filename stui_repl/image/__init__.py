"""The image layer: the Smalltalk image stui talks to.

It owns finding or installing GNU Smalltalk (gst), building the server
image and launching it (launcher), the image's log of its stderr, masked
(log), an attachment (a connection plus the embedded image when stui
started it) and the supervisor that notices a lost image and heals the
attachment with backoff.

It may import the client layer and the base modules, never a session, a
command or a mode: the supervisor is handed what it needs as callables.
"""
