"""The subcommands that open no prompt: `stui serve`, `stui setup`,
`stui session ...`, `stui key rotate` and `stui config`.

`stui session list|show|delete|rename` run the `:session` handlers
themselves (commands.session) on a controller without an image, so the
shell and the prompt cannot drift apart; export and import, which move
whole files, are the shell's alone.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import EXIT_OK, StuiError, UsageError

if TYPE_CHECKING:
    from ..session.store import SessionStore
    from ..session.vault import Vault


def notify(message: str) -> None:
    """A notice or progress line, on stderr."""
    print(f"stui: {message}", file=sys.stderr, flush=True)


def ask_hidden(label: str) -> str:
    """A passphrase or secret from the terminal, never echoed; without a terminal, no answer.

    getpass falls back to reading stdin when there is no terminal, which
    would swallow a piped script's first line: so it is used only when
    /dev/tty opens. A new passphrase is asked twice.
    """
    import getpass

    try:
        os.close(os.open("/dev/tty", os.O_RDWR))
    except OSError:
        return ""
    from ..session.vault import PROMPT_FIRST_PASSPHRASE, PROMPT_NEW_PASSPHRASE

    try:
        answer = getpass.getpass(label)
        confirming = label in (PROMPT_FIRST_PASSPHRASE, PROMPT_NEW_PASSPHRASE) and answer
        if confirming and getpass.getpass("the same again: ") != answer:
            print("stui: the two passphrases differ", file=sys.stderr)
            return ""
        return answer
    except (OSError, EOFError):
        return ""


def terminal_vault() -> Vault:
    """The vault, asking at the terminal for a passphrase when one is needed."""
    from ..session.vault import open_vault

    return open_vault(prompt=ask_hidden)


# -- stui config ------------------------------------------------------------------


def config_command(args: argparse.Namespace) -> int:
    from .. import config
    from ..render import PlainRenderer
    from ..settings import Settings

    if args.example:
        sys.stdout.write(config.example())
        return EXIT_OK
    if args.path:
        print(config.config_path())
        return EXIT_OK
    configured, problems = config.load()
    for problem in problems:
        notify(problem)
    rows = [(name, value, source) for name, value, source, _help in Settings(configured).rows()]
    print(f"configuration file: {config.config_path()}" + ("" if config.config_path().exists() else " (none yet)"))
    PlainRenderer().table("settings", ("name", "value", "from"), rows)
    return EXIT_OK


# -- stui serve and stui setup ------------------------------------------------------


def serve(args: argparse.Namespace) -> int:
    import signal

    from ..client.connection import is_loopback
    from ..image.launcher import launch
    from ..image.tokens import default_token_file, token_for_serving

    if args.lease is not None and not (args.lease >= 0 and args.lease != float("inf")):
        raise UsageError("--lease must be a number of seconds, 0 or more")
    token_path = Path(args.token_file) if args.token_file else default_token_file()
    token = token_for_serving(token_path)
    # SIGTERM stops the server as Ctrl-C does, from the moment it exists: a
    # signal between the launch and the wait must not leave the image behind.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    image = launch(host=args.host, port=args.port, token=token, progress=notify, lease=args.lease)
    try:
        print(f"stui: serving on {image.address} (token in {token_path}); Ctrl-C stops", file=sys.stderr, flush=True)
        if not is_loopback(args.host):
            print(
                f"stui: warning: {image.address} is reachable from the network; only the token protects it, "
                "and whoever has it runs code as you (see the README's Security section)",
                file=sys.stderr, flush=True,
            )
        print(f"{image.address}", flush=True)
        image.process.wait()
        print("stui: the image exited", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        return EXIT_OK
    finally:
        image.stop()


def setup(args: argparse.Namespace) -> int:
    from ..image.gst import ProvisionError, ensure_gst
    from ..image.launcher import server_image

    try:
        install = ensure_gst(progress=notify)
    except ProvisionError as exc:
        raise StuiError(str(exc)) from None
    image = server_image(install, progress=notify)
    print(f"stui: GNU Smalltalk {install.version} ({install.source}: {install.gst})")
    print(f"stui: server image {image}")
    return EXIT_OK


# -- stui session -------------------------------------------------------------------


def session_command(args: argparse.Namespace) -> int:
    from ..commands import REGISTRY, Context
    from ..render import PlainRenderer
    from ..session.controller import SessionController
    from ..session.store import SessionStore, check_name

    store = SessionStore()
    if args.command == "list" and args.names:
        for name in store.names():
            print(name)
        return EXIT_OK
    if args.command == "export":
        text = store.read_text(check_name(args.name))
        if text is None:
            raise UsageError(f"no session named {args.name}")
        sys.stdout.write(text)
        return EXIT_OK
    if args.command == "import":
        return import_session(store, args.file, args.name, yes=args.yes)

    def confirm(question: str) -> bool:
        if args.yes:
            return True
        if not sys.stdin.isatty():
            raise UsageError("stui session delete asks first; without a terminal, add --yes")
        return input(question).strip().lower() in ("y", "yes")

    controller = SessionController(store=store, notify=notify, vault_factory=terminal_vault)
    context = Context(PlainRenderer(), controller, confirm=confirm)
    words = {
        "list": [],
        "show": [check_name(getattr(args, "name", "") or "")] if args.command == "show" else [],
        "delete": [check_name(args.name)] if args.command == "delete" else [],
        "rename": [check_name(args.old), check_name(args.new)] if args.command == "rename" else [],
    }[args.command]
    REGISTRY.dispatch(context, " ".join([":session", args.command, *words]))
    return EXIT_OK


def import_session(store: SessionStore, file: str, name: str | None, *, yes: bool = False) -> int:
    """Add a session from a file, checking it first; never over an existing one.

    A session's code runs whenever the session meets an image: one that holds
    code is shown, and taken only when the person says so (or --yes).
    """
    from ..session import toml as session_toml
    from ..session.store import check_name

    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {file}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        session = session_toml.parse(text)
    except session_toml.SessionFormatError as exc:
        raise UsageError(f"{file} is not a session file stui can read: {exc}") from None
    target = check_name(name or session.name or Path(file).stem)
    if session.code and not yes and not _trust_code(session, file):
        print(f"not imported: session {target} was left out")
        return EXIT_OK
    with store.locked(target):
        if store.exists(target):
            raise UsageError(f"a session named {target} already exists (--as NAME imports it under another name)")
        if target != session.name and (session.secrets() or session.connection.token):
            notify(f"imported as {target}, not {session.name}: its secrets were sealed for {session.name} and will show as locked")
        store.write_text(target, text)
    print(f"imported session {target}")
    return EXIT_OK


def _trust_code(session: Any, file: str) -> bool:
    """Show the code an imported session files into every image it meets, and ask."""
    from ..commands.code import fileout_text

    count = len(session.code)
    if file == "-" or not sys.stdin.isatty():
        raise UsageError(
            f"{file} holds {count} definitions that run in the image whenever the session is opened; "
            "read them (its [[code]] tables) and import with --yes, or from a terminal to be asked")
    sys.stdout.write(fileout_text(session.code, f"The code session {session.name} files in when it is opened"))
    question = f"this session runs the {count} definitions above in every image it meets; import it? [y/N] "
    return input(question).strip().lower() in ("y", "yes")


# -- stui key rotate --------------------------------------------------------------------


def key_command(args: argparse.Namespace) -> int:
    """`stui key rotate`: a new key, every session's secrets sealed again with it."""
    from ..session import toml as session_toml
    from ..session.store import SessionStore
    from ..session.vault import reseal_session

    vault = terminal_vault()
    store = SessionStore()
    new_id = vault.start_rotation()
    count = 0
    unopenable: list[str] = []
    for name in store.names():
        with store.locked(name):
            text = store.read_text(name)
            if text is None:
                continue
            try:
                session = session_toml.parse(text)
            except session_toml.SessionFormatError as exc:
                raise StuiError(f"session {name} is unreadable ({exc}); the rotation is not finished, the old key is kept") from None
            session.name = name
            before = session_toml.render(session, text)
            count += len(session.secrets()) + (session.connection.token is not None)
            unopenable += [f"{name}: {field}" for field in reseal_session(session, vault)]
            after = session_toml.render(session, text)
            if after != before:
                store.write_text(name, after)
    vault.finish_rotation()
    opened = count - len(unopenable)
    print(f"stui: new key {new_id}; {opened} secret{'s' if opened != 1 else ''} sealed again")
    if unopenable:
        notify(f"left as they were, since neither key opens them: {', '.join(unopenable)}")
    return EXIT_OK
