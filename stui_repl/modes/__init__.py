"""The modes: how a person uses stui.

`repl` is the interactive prompt (prompt_toolkit: completion, key bindings,
the session's history), `script` evaluates piped input, -c and -f, and
`admin` holds the subcommands that start no prompt (serve, setup, session,
key, config). Each mode drives a SessionController.

It may import every layer below it: commands, render, session, image,
client and the base modules. Only the REPL imports prompt_toolkit.
"""
