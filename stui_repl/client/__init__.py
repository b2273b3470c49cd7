"""The client layer: talking to a stui server.

It owns the wire protocol (every request and reply shape, framing), the
connection (socket, request ids, pipelining, output events), the scanner
that cuts Smalltalk text into the units sent to the image, and the
evaluator that turns units into requests and replies into results.

It may import only the base modules (errors, paths, settings, locks,
toml_text) and the package's version: nothing here knows about images,
sessions, commands or terminals.
"""
