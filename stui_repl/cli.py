"""The command line: options, choosing a mode, and turning failures into
one-line messages and exit statuses.

Modes (stui_repl.modes): the interactive REPL (a terminal on stdin),
scripted evaluation (piped stdin, -c, -f), and the subcommands that open no
prompt (serve, setup, session, key, config). prompt_toolkit and rich are
imported only by the REPL, so scripts start quickly.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from . import __version__
from .errors import EXIT_USAGE, StuiError, Terminated, UsageError

if TYPE_CHECKING:
    from .session.controller import SessionController

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
  at the prompt, :help lists the meta-commands; after an error, :debug opens a debugger where it stopped

exit status: 0 success, 1 Smalltalk error (or an unsaved session, or an internal error), 2 usage error,
  3 no image reachable, 4 a file others could have written (man stui: SECURITY),
  130 interrupted.
environment: STUI_HOME, STUI_GST, STUI_TOKEN, STUI_PASSPHRASE, STUI_NEW_PASSPHRASE, NO_COLOR,
  COLUMNS, PAGER, LESS, VISUAL, EDITOR, XDG_CONFIG_HOME, XDG_STATE_HOME, XDG_CACHE_HOME.
"""


def _help_width() -> int:
    """The width argparse takes from shutil.get_terminal_size: COLUMNS, else
    the terminal's, else 80; less two."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return (columns or 80) - 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (stui --help lists the options)")

    def _get_formatter(self) -> argparse.HelpFormatter:
        # argparse makes one for every option it adds; left to find the
        # width itself, it imports shutil, and shutil the compression
        # modules: milliseconds of every start.
        return self.formatter_class(prog=self.prog, width=_help_width())

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
    parser.add_argument("--token-file", metavar="FILE", help="read the server token from FILE, mode 0600 (else STUI_TOKEN, else the session's, else stui's own token file)")
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
    importing.add_argument("--yes", action="store_true", help="do not ask before taking a session that holds code")
    return parser.with_debug()


def build_key_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="stui key", description="Manage the key that encrypts session secrets.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_Parser)
    commands.add_parser("rotate", help="make a new key and re-encrypt every session's secrets with it").with_debug()
    return parser.with_debug()


def build_serve_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="stui serve", description="Run a gst image with the stui server until interrupted.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; any other is reachable from the network, guarded by the token alone)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: any free port)")
    parser.add_argument("--token-file", metavar="FILE", help="token file to use or create, mode 0600 (default: stui's own)")
    parser.add_argument(
        "--lease", type=float, metavar="SECONDS",
        help="keep a disconnected client's workspace this long for it to resume (default 300; 0: discard at once)",
    )
    return parser.with_debug()


def build_setup_parser() -> argparse.ArgumentParser:
    return _Parser(prog="stui setup", description="Find or install GNU Smalltalk 3.2.5 and build the server image.").with_debug()


def flags_of(args: argparse.Namespace) -> dict[str, object]:
    """Settings the command line fixes: the top layer over session and configuration."""
    return {"edit_mode": "vi"} if getattr(args, "vi", False) else {}


def wants_color(args: argparse.Namespace) -> bool:
    return not (getattr(args, "no_color", False) or os.environ.get("NO_COLOR"))


def open_controller(args: argparse.Namespace, *, session: str | None, record_history: bool) -> SessionController:
    """Load the session (if any) and attach it to its image, or the one the flags name."""
    from . import config
    from .image.attachment import parse_address
    from .image.tokens import fallback_token, given_token
    from .modes.admin import notify, terminal_vault
    from .session.controller import SessionController

    if args.connect and args.embedded:
        raise UsageError("--connect and --embedded contradict each other")
    if args.connect:
        parse_address(args.connect)  # a bad address is a usage error before anything starts
    configured, problems = config.load()
    for problem in problems:
        notify(problem)
    controller = SessionController(
        progress=notify, notify=notify, record_history=record_history, vault_factory=terminal_vault,
        config=configured, flags=flags_of(args),
    )
    if getattr(args, "debug", False):
        from .client import connection
        from .client.trace import WireTrace

        connection.TRACE = WireTrace(lambda: controller.active.masker if controller.active is not None else None)
    if session is not None:
        controller.use_session(controller.load_session(session))
    controller.fallback_token = fallback_token
    try:
        controller.attach(address=args.connect, token=given_token(args.token_file), embedded=args.embedded)
    except BaseException:
        _close_after_failure(controller)
        raise
    return controller


def run_scripted(args: argparse.Namespace) -> int:
    file = None
    if args.file is not None:
        if not args.file:
            raise UsageError("-f needs a file name (stui reads piped input without -f)")
        try:
            file = open(args.file, "rb")  # noqa: SIM115 (read while the script runs)
        except OSError as exc:
            raise UsageError(f"cannot read {args.file}: {exc.strerror}") from None
    try:
        if args.session is None and args.connect is None:
            # The script's image is the embedded one: it loads while the
            # modules that run the script are imported.
            from .image import attachment
            from .modes.admin import notify

            attachment.start_early(progress=notify)
        from .modes import script
        from .render import JsonRenderer, PlainRenderer

        if file is not None:
            text = script.ScriptInput(args.file, stream=file)
            source, print_values = args.file, args.print_values
        elif args.code is not None:
            text, source, print_values = script.ScriptInput("-c", text=args.code), "-c", not args.quiet
        else:
            text = script.ScriptInput("the piped input", stream=sys.stdin.buffer)
            source, print_values = "stdin", not args.quiet
        renderer = JsonRenderer() if args.format == "json" else PlainRenderer()
        controller = open_controller(args, session=args.session, record_history=False)
        _collect_from_now_on()
        with _closing(controller):
            return script.run(
                text, controller, renderer,
                source=source, print_values=print_values, keep_going=args.keep_going,
            )
    finally:
        if file is not None:
            file.close()


def _collect_from_now_on() -> None:
    """Start-up is over: what it made is frozen out of the collector's way,
    and the collector runs again for what the mode makes."""
    gc.freeze()
    gc.enable()


def run_interactive(args: argparse.Namespace) -> int:
    if args.connect is None:
        # Most sessions use the embedded image: it loads while
        # prompt_toolkit is imported.
        from .image import attachment
        from .modes import prompt  # noqa: F401
        from .modes.admin import notify

        attachment.start_early(progress=notify)
    from .modes.repl import Repl

    controller = open_controller(args, session=args.session or "default", record_history=True)
    with _closing(controller):
        return Repl(controller, color=wants_color(args)).run()


@contextlib.contextmanager
def _closing(controller: Any) -> Iterator[None]:
    """Close the controller however the mode ends; after a signal, without
    waiting for the image (it may be computing)."""
    try:
        yield
    except Terminated:
        _close_after_failure(controller, quick=True)
        raise
    except BaseException:
        _close_after_failure(controller)
        raise
    else:
        controller.close()  # a save that fails raises: stui exits non-zero


def _close_after_failure(controller: Any, *, quick: bool = False) -> None:
    """Close while something else ends stui: a failed save is told, and the
    first failure keeps deciding the exit status."""
    try:
        controller.close(quick=quick)
    except StuiError as exc:
        controller.notify(str(exc))


def _raise_terminated(signum: int, _frame: object) -> None:
    raise Terminated(signum)


def _standard_streams() -> str | None:
    """Occupy a closed stdin, stdout or stderr with /dev/null (`stui <&-`,
    `stui -c 1 >&-`): else the next file stui opens (the image's socket)
    would take its number and receive what was meant for it. Answer the
    name of the closed output stream, if any, to say so."""
    closed = None
    for fd, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)  # the lowest free number: fd itself
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
            stream = open(fd, "r" if fd == 0 else "w", encoding="utf-8", errors="surrogateescape", closefd=False)  # noqa: SIM115
            setattr(sys, name, stream)
            if fd and closed is None:
                closed = name
    return closed


def _stop_on_signals() -> None:
    """SIGTERM and SIGHUP (the terminal went away) unwind like an exception,
    so the session is saved and the image stopped, as when quitting."""
    for name in ("SIGTERM", "SIGHUP"):
        number = getattr(signal, name, None)
        if number is not None:
            signal.signal(number, _raise_terminated)


# The subcommands: their parsers, and where they run (modes.admin).
SUBCOMMANDS = {
    "serve": (build_serve_parser, "serve"),
    "setup": (build_setup_parser, "setup"),
    "session": (build_session_parser, "session_command"),
    "key": (build_key_parser, "key_command"),
    "config": (build_config_parser, "config_command"),
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    # Start-up makes tens of thousands of objects that live as long as stui
    # (modules, the parser, the prompt): the cyclic collector would go over
    # them again and again. It is off until the mode has started
    # (_collect_from_now_on), which freezes them out of its way.
    gc.disable()
    try:
        closed = _standard_streams()
        if closed:
            print(f"stui: {closed} is closed: what goes there is lost", file=sys.stderr)
        _stop_on_signals()
        if argv[:1] and argv[0] in SUBCOMMANDS:
            build, handler = SUBCOMMANDS[argv[0]]
            sub_args = build().parse_args(argv[1:])
            from .modes import admin

            _collect_from_now_on()
            return getattr(admin, handler)(sub_args)
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
    except Terminated as exc:
        return exc.exit_code
    except BrokenPipeError:
        # Whoever read stdout stopped (`stui -f x.st | head`): end quietly, as
        # gst does, killed by SIGPIPE. Nothing more may reach that pipe.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except Exception as exc:  # a bug: one line, unless asked for details
        if debug:
            raise
        print(f"stui: internal error: {type(exc).__name__}: {exc} (--debug shows details)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
