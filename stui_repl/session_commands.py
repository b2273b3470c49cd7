"""The meta-commands about sessions: `:session ...`, `:secret`, `:unset`, `:set`.

They live in the same registry as the others (see meta) and work on the
context's workbench, so they behave alike at the prompt and on `:` lines of
a script run with --session.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from . import preferences
from .errors import UsageError
from .meta import Context, command
from .session_model import Variable, valid_session_name
from .workbench import Workbench

if TYPE_CHECKING:
    from .live_session import LiveSession


def _workbench(context: Context) -> Workbench:
    if context.workbench is None:
        raise UsageError("sessions are not available here")
    return context.workbench


def _live(context: Context) -> LiveSession:
    live = _workbench(context).live
    if live is None:
        raise UsageError("no session in use: scripts use one only with --session NAME")
    return live


def _ago(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


# -- :session -----------------------------------------------------------------------------


def _show(context: Context, argument: str) -> None:
    bench = _workbench(context)
    live = _live(context)
    session = live.session
    info = bench.link.connection.info if bench.link else None
    image = f"{info.version} ({bench.link.describe()})" if info and bench.link else session.connection.describe()
    secrets = session.secrets()
    state = bench.keeper.describe() if bench.keeper is not None else ("connected" if bench.link else "not connected")
    saved = "unsaved changes" if live.dirty else "saved"
    rows = [
        ("file", str(live.file.store.path(live.name))),
        ("image", image + (f", id {info.image_id}" if info else "")),
        ("state", f"{state}; {saved} {_ago(time.monotonic() - live.last_save)}"),
        ("variables", f"{len(session.variables)}" + (f" ({len(secrets)} secret, {len(live.locked)} locked)" if secrets else "")),
        ("history", f"{len(session.history)} inputs (limit {live.settings['history_limit']})"),
        ("created", session.created),
    ]
    context.renderer.table(f"session {live.name}", ("", ""), rows)


def _list(context: Context, argument: str) -> None:
    bench = _workbench(context)
    current = bench.live.name if bench.live else None
    rows = []
    connected = bench.keeper.describe() if bench.keeper is not None else ("connected" if bench.link else "not connected")
    for summary in bench.store.summaries():
        state = summary.state
        if summary.name == current:
            state = f"current, {connected}"
        rows.append((summary.name, summary.image, str(summary.variables), str(summary.history), summary.last_used, state))
    live = bench.live
    if live is not None and not any(row[0] == live.name for row in rows):
        image = bench.link.connection.info.version if bench.link and bench.link.connection.info else "?"
        rows.append((live.name, f"{image} ({live.session.connection.describe()})", str(len(live.session.variables)),
                     str(len(live.session.history)), "now", f"current, {connected}, not saved yet"))
        rows.sort(key=lambda row: row[0])
    context.renderer.table("sessions", ("name", "image", "variables", "history", "last used", "state"), rows)


def _new(context: Context, argument: str) -> None:
    name = _one_name(argument, "new")
    bench = _workbench(context)
    bench.switch(name, create=True)
    context.renderer.info(f"new session {name}" + (f" ({bench.link.describe()} image)" if bench.link else ""))


def _save(context: Context, argument: str) -> None:
    bench = _workbench(context)
    live = _live(context)
    if argument:
        name = _one_name(argument, "save")
        bench.copy_to(name)
        context.renderer.info(f"saved a copy of session {live.name} as {name} (you are still in {live.name})")
        return
    bench.save()
    context.renderer.info(f"saved session {live.name} ({bench.store.path(live.name)})")


def _restore(context: Context, argument: str) -> None:
    bench = _workbench(context)
    live = _live(context)
    name = _one_name(argument, "restore") if argument else live.name
    if not bench.store.exists(name):
        raise UsageError(f"session {name} has not been saved yet" if name == live.name else f"no session named {name}")
    loaded = bench.load_session(name)
    variables = loaded.session.replay_order()
    if not variables:
        context.renderer.info(f"session {name} has no saved variables")
        return
    skipped = []
    for variable in variables:
        if variable.is_secret and variable.name in loaded.plaintexts:
            if name == live.name:
                live.plaintexts[variable.name] = loaded.plaintexts[variable.name]
                live.masker.add(loaded.plaintexts[variable.name])
            else:
                # Another session's secret: seal it for this one.
                live.set_secret(context.evaluator, variable.name, loaded.plaintexts[variable.name])
                continue
        elif variable.is_secret and name != live.name:
            skipped.append(variable.name)  # sealed for the other session, and locked: it cannot move
            continue
        live.session.variables[variable.name] = variable if name == live.name else _renumbered(live, variable)
    if skipped:
        context.renderer.warning(f"not restored, locked in session {name}: {', '.join(skipped)}")
    live.dirty = True
    report = live.restore(context.evaluator, [live.session.variables[v.name] for v in variables if v.name in live.session.variables])
    context.renderer.info(report.summary() or "nothing to restore")


def _renumbered(live: LiveSession, variable: Variable) -> Variable:
    """A variable from another session goes after this session's own."""
    return replace(variable, order=live.session.next_order())


def _switch(context: Context, argument: str) -> None:
    name = _one_name(argument, "switch")
    bench = _workbench(context)
    bench.switch(name)
    context.renderer.info(f"session {name}" + (f" ({bench.link.describe()} image)" if bench.link else ""))


def _reconnect(context: Context, argument: str) -> None:
    context.renderer.info(_workbench(context).reconnect())


def _delete(context: Context, argument: str) -> None:
    name = _one_name(argument, "delete")
    bench = _workbench(context)
    if bench.live is not None and bench.live.name == name:
        raise UsageError("cannot delete the session in use (:session switch to another one first)")
    if not bench.store.exists(name):
        raise UsageError(f"no session named {name}")
    if context.confirm is None or not context.confirm(f"delete session {name} and its backup? [y/N] "):
        context.renderer.info("not deleted")
        return
    with bench.store.locked(name):
        bench.store.delete(name)
    context.renderer.info(f"deleted session {name}")


def _rename(context: Context, argument: str) -> None:
    words = argument.split()
    if len(words) != 2:
        raise UsageError(":session rename takes OLD NEW")
    old, new = (_one_name(word, "rename") for word in words)
    _workbench(context).rename(old, new)
    context.renderer.info(f"renamed session {old} to {new}")


def _one_name(argument: str, subcommand: str) -> str:
    words = argument.split()
    if len(words) != 1:
        raise UsageError(f":session {subcommand} takes one session name")
    if not valid_session_name(words[0]):
        raise UsageError(f"{words[0]!r} is not a session name (letters, digits, '.', '_', '-')")
    return words[0]


SUBCOMMANDS: dict[str, tuple[str, str, Callable[[Context, str], None]]] = {
    "show": ("", "the current session: file, image, state, counts", _show),
    "list": ("", "every session: image, variables, history, last used, state", _list),
    "new": ("NAME", "start an empty session NAME on an image of its own, and switch to it", _new),
    "save": ("[NAME]", "save now, or save a copy as NAME", _save),
    "restore": ("[NAME]", "re-create the variables saved in this session's file (or NAME's) in the image", _restore),
    "switch": ("NAME", "save this session, then open NAME with its history, variables and image", _switch),
    "reconnect": ("", "drop the connection and connect again, restoring the workspace if the image is new", _reconnect),
    "delete": ("NAME", "delete a session and its backup (asks first; never the current one)", _delete),
    "rename": ("OLD NEW", "rename a session", _rename),
}
# Subcommands whose argument is an existing session's name.
_TAKES_SESSION = ("switch", "restore", "delete", "rename")


def _complete_session(context: Context | None, typed: str) -> list[str]:
    words = typed.split(" ")
    if len(words) <= 1:
        return [name for name in SUBCOMMANDS if name.startswith(words[0])]
    if words[0] in _TAKES_SESSION and len(words) == 2:
        store = context.workbench.store if context is not None and context.workbench is not None else None
        if store is None:
            from .session_store import SessionStore

            store = SessionStore()
        return [f"{words[0]} {name}" for name in store.names() if name.startswith(words[1])]
    return []


def _subcommand_rows() -> list[tuple[str, str]]:
    return [(f":session {name} {syntax}".rstrip(), text) for name, (syntax, text, _) in SUBCOMMANDS.items()]


@command(
    "session", "[SUBCOMMAND]", "sessions: show, list, new, save, restore, switch, reconnect, delete, rename",
    complete=_complete_session, details=_subcommand_rows,
)
def _session(context: Context, argument: str) -> None:
    subcommand, _, rest = argument.partition(" ")
    if not subcommand:
        subcommand = "show"
    entry = SUBCOMMANDS.get(subcommand)
    if entry is None:
        if subcommand != "help":
            context.renderer.problem(f"no :session {subcommand}")
        context.renderer.table(":session", ("command", "what it does"), _subcommand_rows())
        return
    entry[2](context, rest.strip())


# -- :connect ---------------------------------------------------------------------------


def _recent_addresses(context: Context | None) -> list[str]:
    bench = context.workbench if context is not None else None
    if bench is None or bench.live is None:
        return []
    return [recent.address for recent in bench.live.session.recent]


def _complete_connect(context: Context | None, typed: str) -> list[str]:
    return [address for address in [*_recent_addresses(context), "embedded"] if address.startswith(typed)]


@command("connect", "[HOST:PORT | embedded]", "move this session to another image, taking its variables along; alone, list recent images",
         complete=_complete_connect)
def _connect(context: Context, argument: str) -> None:
    bench = _workbench(context)
    if not argument:
        live = bench.live
        rows = [(r.address, r.version, r.last_used[:19].replace("T", " ")) for r in (live.session.recent if live else [])]
        context.renderer.table("recent connections", ("address", "image", "last used"), rows)
        return
    address = None if argument == "embedded" else argument.split()[0]
    token = os.environ.get("STUI_TOKEN") or None
    try:
        report = bench.connect(address, token)
    except UsageError as exc:
        if "needs the server's token" not in str(exc) or context.ask_secret is None:
            raise
        token = context.ask_secret(f"token for {address} (not shown): ")
        if not token:
            raise UsageError("no token given; still on the same image") from None
        report = bench.connect(address, token)
    where = bench.link.describe() if bench.link else "?"
    restored = report.summary() if report is not None else None
    context.renderer.info(f"now on {where}" + (f"; {restored}" if restored else ""))


# -- variables and secrets ---------------------------------------------------------------


@command("secret", "NAME", "ask for a value without echo and bind it to NAME, kept encrypted in the session")
def _secret(context: Context, argument: str) -> None:
    words = argument.split()
    if len(words) != 1:
        raise UsageError(":secret takes only a name; the value is asked for without echo")
    name = words[0]
    live = _live(context)
    if context.ask_secret is None:
        raise UsageError(":secret needs a terminal to ask for the value")
    value = context.ask_secret(f"value of {name} (not shown): ")
    if not value:
        context.renderer.info("no value given; nothing changed")
        return
    live.set_secret(context.evaluator, name, value)
    context.renderer.info(f"{name} holds a secret; it is saved encrypted and shown as ********")


@command("unset", "NAME...", "remove variables from the image and from the session")
def _unset(context: Context, argument: str) -> None:
    names = argument.split()
    if not names:
        raise UsageError(":unset takes the names of variables to remove")
    bench = _workbench(context)
    for name in names:
        if bench.live is not None:
            removed = bench.live.unset(context.evaluator, name)
        else:
            reply = context.evaluator.connection.request({"op": "bindings", "action": "remove", "names": [name]})
            removed = name in (reply.get("removed") or ())
        if removed:
            hint = " (:session restore brings it back until the next save)" if bench.live is not None else ""
            context.renderer.info(f"removed {name}{hint}")
        else:
            context.renderer.problem(f"no variable named {name}")


def _complete_set(context: Context | None, typed: str) -> list[str]:
    words = typed.split(" ")
    if len(words) <= 1:
        return [p.name for p in preferences.PREFERENCES if p.name.startswith(words[0])]
    if words[0] not in preferences.BY_NAME or len(words) != 2:
        return []
    values = preferences.Settings().values_of(words[0])
    return [f"{words[0]} {value}" for value in [*values, "default"] if value.startswith(words[1])]


@command("set", "[NAME [VALUE]]", "show the settings, or change one for this session (VALUE default resets it)", complete=_complete_set)
def _set(context: Context, argument: str) -> None:
    bench = _workbench(context)
    settings = bench.settings
    name, _, value = argument.partition(" ")
    value = value.strip()
    if not name or not value:
        try:
            rows = settings.rows([name] if name else None)
        except preferences.PreferenceError as exc:
            raise UsageError(str(exc)) from None
        context.renderer.table("settings", ("name", "value", "from", "what it does"), rows)
        known = settings.values_of(name) if name else []
        if len(known) > 2:
            context.renderer.info("allowed: " + ", ".join(known))
        return
    try:
        preference = preferences.lookup(name)
        parsed = None if value == "default" else preference.parse(value)
    except preferences.PreferenceError as exc:
        raise UsageError(str(exc)) from None
    if parsed is None:
        settings.session.pop(name, None)
    else:
        settings.session[name] = parsed
    if bench.live is not None:
        if parsed is None:
            bench.live.session.preferences.pop(name, None)
        else:
            bench.live.session.preferences[name] = parsed
        bench.live.dirty = True
    where = f"for session {bench.live.name}" if bench.live else "until stui exits"
    shown = preference.show(settings[name])
    if name in settings.flags:
        context.renderer.info(f"{name} stays {shown}: the command line sets it")
        return
    context.renderer.info(f"{name} = {shown} {where}")
