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

from . import __version__, paths
from .errors import EXIT_OK, EXIT_USAGE, StuiError, UsageError

DESCRIPTION = "A line-mode REPL for Smalltalk. Without arguments, opens a prompt on a GNU Smalltalk image that stui starts itself."

EPILOG = """\
modes:
  stui                       interactive prompt on an embedded gst image
  stui < script.st           evaluate stdin statement by statement, printing each value
  stui -c CODE               evaluate CODE the same way
  stui -f FILE               run FILE like `gst FILE` (only the program's own output)
  stui serve [...]           run just the server, for `stui --connect` from elsewhere
  stui setup                 install GNU Smalltalk and build the server image now

exit status: 0 success, 1 Smalltalk error (or an internal one), 2 usage error,
  3 no image reachable, 130 interrupted.
environment: STUI_HOME, STUI_GST, STUI_TOKEN, NO_COLOR, XDG_CONFIG_HOME, XDG_STATE_HOME, XDG_CACHE_HOME.
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (stui --help lists the options)")

    def with_debug(self) -> _Parser:
        """Every command takes --debug (main() looks for it before parsing)."""
        self.add_argument("--debug", action="store_true", help="show tracebacks for internal errors")
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
    parser.add_argument("--connect", metavar="HOST:PORT", help="use an image already running the stui server")
    parser.add_argument("--token-file", metavar="FILE", help="read the server token from FILE (else STUI_TOKEN, else stui's own token file)")
    return parser.with_debug()


def build_serve_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="stui serve", description="Run a gst image with the stui server until interrupted.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: any free port)")
    parser.add_argument("--token-file", metavar="FILE", help="token file to use or create (default: stui's own)")
    return parser.with_debug()


def build_setup_parser() -> argparse.ArgumentParser:
    return _Parser(prog="stui setup", description="Find or install GNU Smalltalk 3.2.5 and build the server image.").with_debug()


def default_token_file() -> Path:
    return paths.config_dir() / "token"


def read_token(token_file: str | None) -> str:
    if token_file:
        return _read_token_file(Path(token_file))
    if os.environ.get("STUI_TOKEN"):
        return os.environ["STUI_TOKEN"].strip()
    if default_token_file().exists():
        return _read_token_file(default_token_file())
    raise UsageError("--connect needs the server's token: --token-file FILE or STUI_TOKEN")


def _read_token_file(path: Path) -> str:
    try:
        token = path.read_text().strip()
    except OSError as exc:
        raise UsageError(f"cannot read the token file {path}: {exc.strerror}") from None
    if not token:
        raise UsageError(f"the token file {path} is empty")
    return token


def parse_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--connect wants HOST:PORT, not {text!r}")
    return host.strip("[]"), int(port)


def _progress(message: str) -> None:
    print(f"stui: {message}", file=sys.stderr, flush=True)


def open_image(args: argparse.Namespace):  # -> tuple[Connection, RunningImage | None]
    """Connect to --connect, or launch the embedded image."""
    from .connection import Connection

    if args.connect:
        host, port = parse_address(args.connect)
        return Connection.open(host, port, read_token(args.token_file)), None
    from .launcher import launch

    image = launch(progress=_progress)
    try:
        return Connection.open(image.host, image.port, image.token), image
    except BaseException:
        image.stop()
        raise


def run_scripted(args: argparse.Namespace) -> int:
    from . import script
    from .evaluator import Evaluator
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
    connection, image = open_image(args)
    try:
        return script.run(
            text, Evaluator(connection), renderer,
            source=source, print_values=print_values, keep_going=args.keep_going,
        )
    finally:
        connection.close()
        if image:
            image.stop()


def run_interactive(args: argparse.Namespace) -> int:
    from .repl import Repl

    connection, image = open_image(args)
    try:
        return Repl(connection, image).run()
    finally:
        connection.close()
        if image:
            image.stop()


def serve(argv: Sequence[str]) -> int:
    import secrets
    import signal

    from .launcher import launch

    args = build_serve_parser().parse_args(argv)
    token_path = Path(args.token_file) if args.token_file else default_token_file()
    if token_path.exists():
        token = _read_token_file(token_path)
    else:
        token = secrets.token_hex(16)
        token_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(token_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(token + "\n")
    image = launch(host=args.host, port=args.port, token=token, progress=_progress)
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


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        if argv[:1] == ["serve"]:
            return serve(argv[1:])
        if argv[:1] == ["setup"]:
            return setup(argv[1:])
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
