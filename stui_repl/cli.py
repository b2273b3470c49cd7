"""The command line: options, choosing a mode, and turning failures into
one-line messages and exit statuses.

Modes: the interactive REPL (a terminal on stdin), scripted evaluation
(piped stdin, -c, -f), `stui serve` (just the server, for --connect from
elsewhere) and `stui setup` (provision gst and build the server image ahead
of time). prompt_toolkit and rich are imported only by the REPL, so scripts
start quickly.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__, paths
from .errors import EXIT_OK, EXIT_USAGE, StuiError, UsageError

if TYPE_CHECKING:
    from .session_store import SessionStore
    from .vault import Vault

DESCRIPTION = "A line-mode REPL for Smalltalk. Without arguments, opens a prompt on a GNU Smalltalk image that stui starts itself."

EPILOG = """\
modes:
  stui                       interactive prompt on an embedded gst image
  stui < script.st           evaluate stdin statement by statement, printing each value
  stui -c CODE               evaluate CODE the same way
  stui -f FILE               run FILE like `gst FILE` (only the program's own output)
  stui serve [...]           run just the server, for `stui --connect` from elsewhere
  stui setup                 install GNU Smalltalk and build the server image now
  stui session COMMAND       list, show, delete, rename, export or import sessions
  stui key rotate            re-encrypt every session's secrets with a new key
  stui config [--example|--path]  the settings and where each comes from; a documented file

exit status: 0 success, 1 Smalltalk error (or an internal one), 2 usage error,
  3 no image reachable, 130 interrupted.
environment: STUI_HOME, STUI_GST, STUI_TOKEN, STUI_PASSPHRASE, STUI_NEW_PASSPHRASE, NO_COLOR,
  PAGER, LESS, VISUAL, EDITOR, XDG_CONFIG_HOME, XDG_STATE_HOME, XDG_CACHE_HOME.
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (stui --help lists the options)")

    def with_debug(self, *, wire: bool = False) -> _Parser:
        """Every command takes --debug (main() looks for it before parsing)."""
        text = "show tracebacks for internal errors" + (", and the wire traffic (secrets masked)" if wire else "")
        self.add_argument("--debug", action="store_true", help=text)
        return self


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="stui", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"stui {__version__}")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("-c", dest="code", metavar="CODE", help="evaluate CODE and print each statement's value")
    source.add_argument("-f", dest="file", metavar="FILE", help="run FILE, printing only its own output (like gst FILE)")
    show = parser.add_mutually_exclusive_group()
    show.add_argument("-q", "--quiet", action="store_true", help="print only the program's output, not statement values")
    show.add_argument("-p", "--print", dest="print_values", action="store_true", help="print each statement's value (the default except with -f)")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="scripted output: text, or one JSON object per statement")
    parser.add_argument("--keep-going", action="store_true", help="in scripts, carry on after a Smalltalk error")
    parser.add_argument("--connect", metavar="HOST:PORT", help="use an image already running the stui server (the session remembers it)")
    parser.add_argument("--token-file", metavar="FILE", help="read the server token from FILE (else STUI_TOKEN, else the session's, else stui's own token file)")
    parser.add_argument("--embedded", action="store_true", help="use a fresh embedded image even if the session remembers another")
    parser.add_argument("--session", metavar="NAME", help="use session NAME (default: 'default' at a terminal, none for scripts)")
    parser.add_argument("--vi", action="store_true", help="vi key bindings at the prompt (the edit_mode setting)")
    parser.add_argument("--no-color", action="store_true", help="no colours (as the NO_COLOR environment variable)")
    return parser.with_debug(wire=True)


def build_config_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="stui config", description="Show the settings and where each comes from, or the configuration file.")
    show = parser.add_mutually_exclusive_group()
    show.add_argument("--example", action="store_true", help="print a configuration file with every setting documented")
    show.add_argument("--path", action="store_true", help="print where the configuration file is")
    return parser.with_debug()


def build_session_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="stui session", description="Manage saved sessions from the shell.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_Parser)
    listing = commands.add_parser("list", help="list the sessions").with_debug()
    listing.add_argument("--names", action="store_true", help="only the names, one per line (for shell completion)")
    show = commands.add_parser("show", help="describe a session: image, connection, variables, history").with_debug()
    show.add_argument("name", metavar="NAME", help="the session")
    delete = commands.add_parser("delete", help="delete a session and its backup").with_debug()
    delete.add_argument("name", metavar="NAME", help="the session")
    delete.add_argument("--yes", action="store_true", help="do not ask")
    rename = commands.add_parser("rename", help="rename a session").with_debug()
    rename.add_argument("old", metavar="OLD", help="the session's name now")
    rename.add_argument("new", metavar="NEW", help="its new name")
    export = commands.add_parser("export", help="write a session's file to stdout (secrets stay encrypted)").with_debug()
    export.add_argument("name", metavar="NAME", help="the session")
    importing = commands.add_parser("import", help="add a session from a file ('-' for stdin)").with_debug()
    importing.add_argument("file", metavar="FILE", help="a session file, as export writes it")
    importing.add_argument("--as", dest="name", metavar="NAME", help="the name to give it (default: the file's own)")
    return parser.with_debug()


def build_key_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="stui key", description="Manage the key that encrypts session secrets.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_Parser)
    commands.add_parser("rotate", help="make a new key and re-encrypt every session's secrets with it").with_debug()
    return parser.with_debug()


def build_serve_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="stui serve", description="Run a gst image with the stui server until interrupted.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: any free port)")
    parser.add_argument("--token-file", metavar="FILE", help="token file to use or create (default: stui's own)")
    parser.add_argument(
        "--lease", type=float, metavar="SECONDS",
        help="keep a disconnected client's workspace this long for it to resume (default 300; 0: discard at once)",
    )
    return parser.with_debug()


def build_setup_parser() -> argparse.ArgumentParser:
    return _Parser(prog="stui setup", description="Find or install GNU Smalltalk 3.2.5 and build the server image.").with_debug()


def default_token_file() -> Path:
    return paths.config_dir() / "token"


def given_token(token_file: str | None) -> str | None:
    """The token named on the command line or in the environment, if any."""
    if token_file:
        return _read_token_file(Path(token_file))
    if os.environ.get("STUI_TOKEN"):
        return os.environ["STUI_TOKEN"].strip()
    return None


def fallback_token() -> str | None:
    """The token `stui serve` wrote, for a server on this machine."""
    return _read_token_file(default_token_file()) if default_token_file().exists() else None


def _read_token_file(path: Path) -> str:
    try:
        token = path.read_text().strip()
    except OSError as exc:
        raise UsageError(f"cannot read the token file {path}: {exc.strerror}") from None
    if not token:
        raise UsageError(f"the token file {path} is empty")
    return token


def _notify(message: str) -> None:
    print(f"stui: {message}", file=sys.stderr, flush=True)


_progress = _notify  # progress of provisioning and launching: the same one line on stderr


def flags_of(args: argparse.Namespace) -> dict[str, object]:
    """Settings the command line fixes: the top layer over session and configuration."""
    return {"edit_mode": "vi"} if getattr(args, "vi", False) else {}


def wants_color(args: argparse.Namespace) -> bool:
    return not (getattr(args, "no_color", False) or os.environ.get("NO_COLOR"))


def config_command(argv: Sequence[str]) -> int:
    from . import config
    from .preferences import Settings
    from .render import PlainRenderer

    args = build_config_parser().parse_args(argv)
    if args.example:
        sys.stdout.write(config.example())
        return EXIT_OK
    if args.path:
        print(config.config_path())
        return EXIT_OK
    configured, problems = config.load()
    for problem in problems:
        _notify(problem)
    rows = [(name, value, source) for name, value, source, _help in Settings(configured).rows()]
    print(f"configuration file: {config.config_path()}" + ("" if config.config_path().exists() else " (none yet)"))
    PlainRenderer().table("settings", ("name", "value", "from"), rows)
    return EXIT_OK


def open_workbench(args: argparse.Namespace, *, session: str | None, record_history: bool):  # -> Workbench
    """Load the session (if any) and attach it to its image, or the one the flags name."""
    from .image_link import parse_address
    from .workbench import Workbench

    if args.connect and args.embedded:
        raise UsageError("--connect and --embedded contradict each other")
    if args.connect:
        parse_address(args.connect)  # a bad address is a usage error before anything starts
    from . import config

    configured, problems = config.load()
    for problem in problems:
        _notify(problem)
    bench = Workbench(
        progress=_progress, notify=_notify, record_history=record_history, vault_factory=_vault_factory,
        config=configured, flags=flags_of(args),
    )
    if getattr(args, "debug", False):
        from . import connection
        from .wire_trace import WireTrace

        connection.TRACE = WireTrace(lambda: bench.live.masker if bench.live is not None else None)
    if session is not None:
        bench.use_session(bench.load_session(session))
    bench.default_token = fallback_token()
    try:
        bench.attach(address=args.connect, token=given_token(args.token_file), embedded=args.embedded)
    except BaseException:
        bench.close()
        raise
    return bench


def run_scripted(args: argparse.Namespace) -> int:
    from . import script
    from .render import JsonRenderer, PlainRenderer

    if args.file:
        try:
            text = Path(args.file).read_text(encoding="utf-8", errors="surrogateescape")
        except OSError as exc:
            raise UsageError(f"cannot read {args.file}: {exc.strerror}") from None
        source, print_values = args.file, args.print_values
    elif args.code is not None:
        text, source, print_values = args.code, "-c", not args.quiet
    else:
        text, source, print_values = sys.stdin.read(), "stdin", not args.quiet
    renderer = JsonRenderer() if args.format == "json" else PlainRenderer()
    bench = open_workbench(args, session=args.session, record_history=False)
    try:
        return script.run(
            text, bench, renderer,
            source=source, print_values=print_values, keep_going=args.keep_going,
        )
    finally:
        bench.close()


def run_interactive(args: argparse.Namespace) -> int:
    from .repl import Repl

    bench = open_workbench(args, session=args.session or "default", record_history=True)
    try:
        return Repl(bench, color=wants_color(args)).run()
    finally:
        bench.close()


def serve(argv: Sequence[str]) -> int:
    import secrets
    import signal

    from .launcher import launch

    args = build_serve_parser().parse_args(argv)
    if args.lease is not None and not (args.lease >= 0 and args.lease != float("inf")):
        raise UsageError("--lease must be a number of seconds, 0 or more")
    token_path = Path(args.token_file) if args.token_file else default_token_file()
    if token_path.exists():
        token = _read_token_file(token_path)
    else:
        token = secrets.token_hex(16)
        token_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(token_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(token + "\n")
    image = launch(host=args.host, port=args.port, token=token, progress=_progress, lease=args.lease)
    print(f"stui: serving on {image.address} (token in {token_path}); Ctrl-C stops", file=sys.stderr, flush=True)
    print(f"{image.address}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        image.process.wait()
        print("stui: the image exited", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        return EXIT_OK
    finally:
        image.stop()


def setup(argv: Sequence[str]) -> int:
    from .launcher import server_image
    from .provision import ProvisionError, ensure_gst

    build_setup_parser().parse_args(argv)
    try:
        install = ensure_gst(progress=_progress)
    except ProvisionError as exc:
        raise StuiError(str(exc)) from None
    image = server_image(install, progress=_progress)
    print(f"stui: GNU Smalltalk {install.version} ({install.source}: {install.gst})")
    print(f"stui: server image {image}")
    return EXIT_OK


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
    from .vault import PROMPT_FIRST_PASSPHRASE, PROMPT_NEW_PASSPHRASE

    try:
        answer = getpass.getpass(label)
        confirming = label in (PROMPT_FIRST_PASSPHRASE, PROMPT_NEW_PASSPHRASE) and answer
        if confirming and getpass.getpass("the same again: ") != answer:
            print("stui: the two passphrases differ", file=sys.stderr)
            return ""
        return answer
    except (OSError, EOFError):
        return ""


def session_command(argv: Sequence[str]) -> int:
    from .session_store import SessionStore, check_name

    args = build_session_parser().parse_args(argv)
    store = SessionStore()
    if args.command == "list":
        if args.names:
            for name in store.names():
                print(name)
            return EXIT_OK
        rows = [(s.name, s.image, str(s.variables), str(s.history), s.last_used, s.state) for s in store.summaries()]
        from .render import PlainRenderer

        PlainRenderer().table("sessions", ("name", "image", "variables", "history", "last used", "state"), rows)
        return EXIT_OK
    if args.command == "export":
        text = store.read_text(check_name(args.name))
        if text is None:
            raise UsageError(f"no session named {args.name}")
        sys.stdout.write(text)
        return EXIT_OK
    if args.command == "show":
        return show_session(store, check_name(args.name))
    if args.command == "delete":
        if not store.exists(check_name(args.name)):
            raise UsageError(f"no session named {args.name}")
        if not args.yes:
            if not sys.stdin.isatty():
                raise UsageError("stui session delete asks first; without a terminal, add --yes")
            if input(f"delete session {args.name} and its backup? [y/N] ").strip().lower() not in ("y", "yes"):
                print("not deleted")
                return EXIT_OK
        with store.locked(args.name):
            store.delete(args.name)
        print(f"deleted session {args.name}")
        return EXIT_OK
    if args.command == "rename":
        from .workbench import Workbench

        Workbench(store=store, notify=_notify, vault_factory=_vault_factory).rename(check_name(args.old), check_name(args.new))
        print(f"renamed session {args.old} to {args.new}")
        return EXIT_OK
    return import_session(store, args.file, args.name)


def show_session(store: SessionStore, name: str) -> int:
    """What a session holds, for a person: not its file (export prints that)."""
    from .render import PlainRenderer

    if not store.exists(name):
        raise UsageError(f"no session named {name}")
    loaded = store.load(name)
    for note in loaded.notes:
        _notify(note)
    session = loaded.session
    image = f"{session.image.version} (id {session.image.image_id})" if session.image else "not seen yet"
    renderer = PlainRenderer()
    renderer.table(f"session {name}", ("", ""), [
        ("file", str(store.path(name))),
        ("image", image),
        ("connection", session.connection.describe() + (" (token saved, encrypted)" if session.connection.token else "")),
        ("history", f"{len(session.history)} inputs"),
        ("created", session.created),
        ("last used", session.updated),
    ])
    rows = []
    for variable in session.replay_order():
        rows.append((variable.name, variable.value_class, variable.value, variable.kept_as))
    renderer.table("variables", ("name", "class", "value", "saved as"), rows)
    return EXIT_OK


def import_session(store: SessionStore, file: str, name: str | None) -> int:
    """Add a session from a file, checking it first; never over an existing one."""
    from . import session_format
    from .session_store import check_name

    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {file}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        session = session_format.parse(text)
    except session_format.SessionFormatError as exc:
        raise UsageError(f"{file} is not a session file stui can read: {exc}") from None
    target = check_name(name or session.name or Path(file).stem)
    with store.locked(target):
        if store.exists(target):
            raise UsageError(f"a session named {target} already exists (--as NAME imports it under another name)")
        if target != session.name and (session.secrets() or session.connection.token):
            _notify(f"imported as {target}, not {session.name}: its secrets were sealed for {session.name} and will show as locked")
        store.write_text(target, text)
    print(f"imported session {target}")
    return EXIT_OK


def _vault_factory() -> Vault:
    from .vault import open_vault

    return open_vault(prompt=ask_hidden)


def key_command(argv: Sequence[str]) -> int:
    """`stui key rotate`: a new key, every session's secrets sealed again with it."""
    from dataclasses import replace

    from . import session_format
    from .live_session import TOKEN_FIELD, secret_field
    from .session_model import ConnectionSpec
    from .session_store import SessionStore

    build_key_parser().parse_args(argv)
    vault = _vault_factory()
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
                session = session_format.parse(text)
            except session_format.SessionFormatError as exc:
                raise StuiError(f"session {name} is unreadable ({exc}); the rotation is not finished, the old key is kept") from None
            changed = False
            for variable in session.secrets():
                sealed = _resealed(vault, variable.sealed, name, secret_field(variable.name), unopenable)
                if sealed != variable.sealed:
                    session.variables[variable.name] = replace(variable, sealed=sealed)
                    changed = True
                count += 1
            if session.connection.token is not None:
                sealed = _resealed(vault, session.connection.token, name, TOKEN_FIELD, unopenable)
                changed = changed or sealed != session.connection.token
                session.connection = ConnectionSpec(session.connection.address, sealed)
                count += 1
            if changed:
                store.write_text(name, session_format.render(session, text))
    vault.finish_rotation()
    opened = count - len(unopenable)
    print(f"stui: new key {new_id}; {opened} secret{'s' if opened != 1 else ''} sealed again")
    if unopenable:
        _notify(f"left as they were, since neither key opens them: {', '.join(unopenable)}")
    return EXIT_OK


def _resealed(vault: Vault, sealed: str, session: str, field: str, unopenable: list[str]) -> str:
    """The value sealed with the new key; one that no key here opens stays as it is (and is listed)."""
    from .vault import LockedSecret

    try:
        return vault.reseal(sealed, session=session, field=field)
    except LockedSecret:
        unopenable.append(f"{session}: {field}")
        return sealed


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        if argv[:1] == ["serve"]:
            return serve(argv[1:])
        if argv[:1] == ["setup"]:
            return setup(argv[1:])
        if argv[:1] == ["session"]:
            return session_command(argv[1:])
        if argv[:1] == ["key"]:
            return key_command(argv[1:])
        if argv[:1] == ["config"]:
            return config_command(argv[1:])
        args = build_parser().parse_args(argv)
        if args.file is None and args.code is None and sys.stdin.isatty():
            if args.format != "text":
                raise UsageError("--format json is for scripts (-c, -f or piped input)")
            return run_interactive(args)
        return run_scripted(args)
    except StuiError as exc:
        print(f"stui: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("stui: interrupted", file=sys.stderr)
        return 130
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except Exception as exc:  # a bug: one line, unless asked for details
        if debug:
            raise
        print(f"stui: internal error: {type(exc).__name__}: {exc} (--debug shows details)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
