"""The meta-commands about sessions: `:session ...`, `:connect`, `:secret`, `:unset`.

They work on the context's session controller, so they behave alike at the
prompt, on `:` lines of a script run with --session, and from the shell:
`stui session list|show|delete|rename` run these same handlers on a
controller that has no image.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from ..errors import UsageError
from ..session.model import MergeNote, Variable, merge_code, valid_session_name
from .registry import Context, command

if TYPE_CHECKING:
    from ..session.active import ActiveSession
    from ..session.controller import SessionController


def _active(context: Context) -> ActiveSession:
    active = context.controller.active
    if active is None:
        raise UsageError("no session in use: scripts use one only with --session NAME")
    return active


def _ago(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


# -- :session -----------------------------------------------------------------------------


def _show(context: Context, argument: str) -> None:
    """The current session as it is now, or (NAME, or no current session) a saved one as its file holds it."""
    controller = context.controller
    active = controller.active
    name = _one_name(argument, "show") if argument else None
    if name is None and active is None:
        raise UsageError(":session show needs a session name here")
    if name is not None and (active is None or name != active.name):
        _show_saved(context, name)
        return
    assert active is not None
    session = active.session
    attachment = controller.attachment
    info = attachment.connection.info if attachment else None
    image = f"{info.version} ({attachment.describe()})" if info and attachment else session.connection.describe()
    secrets = session.secrets()
    saved = "unsaved changes" if active.dirty else "saved"
    rows = [
        ("file", str(active.file.store.path(active.name))),
        ("image", image + (f", id {info.image_id}" if info else "")),
        ("state", f"{controller.state()}; {saved} {_ago(time.monotonic() - active.last_save)}"),
        ("variables", f"{len(session.variables)}" + (f" ({len(secrets)} secret, {len(active.locked)} locked)" if secrets else "")),
        ("code", f"{len(session.code)} definitions (:changes lists them)"),
        ("history", f"{len(session.history)} inputs (limit {active.settings['history_limit']})"),
        ("created", session.created),
    ]
    context.renderer.table(f"session {active.name}", ("", ""), rows)


def _show_saved(context: Context, name: str) -> None:
    """What a saved session holds, for a person: not its file (`stui session export` prints that)."""
    store = context.controller.store
    if not store.exists(name):
        raise UsageError(f"no session named {name}")
    loaded = store.load(name)
    for note in loaded.notes:
        context.renderer.warning(note)
    session = loaded.session
    image = f"{session.image.version} (id {session.image.image_id})" if session.image else "not seen yet"
    context.renderer.table(f"session {name}", ("", ""), [
        ("file", str(store.path(name))),
        ("image", image),
        ("connection", session.connection.describe() + (" (token saved, encrypted)" if session.connection.token else "")),
        ("history", f"{len(session.history)} inputs"),
        ("created", session.created),
        ("last used", session.updated),
    ])
    rows = [(v.name, v.value_class, v.value, v.kept_as) for v in session.replay_order()]
    context.renderer.table("variables", ("name", "class", "value", "saved as"), rows)
    code = [(entry.describe(), entry.name, entry.changed[:19].replace("T", " ")) for entry in session.code]
    if code:
        context.renderer.table("code, filed in before the variables", ("kind", "name", "changed"), code)


def _list(context: Context, argument: str) -> None:
    controller = context.controller
    active = controller.active
    current = active.name if active else None
    rows = []
    for summary in controller.store.summaries():
        state = summary.state
        if summary.name == current:
            state = f"current, {controller.state()}"
        rows.append((summary.name, summary.image, str(summary.variables), str(summary.history), summary.last_used, state))
    if active is not None and not any(row[0] == active.name for row in rows):
        attachment = controller.attachment
        image = attachment.connection.info.version if attachment and attachment.connection.info else "?"
        rows.append((active.name, f"{image} ({active.session.connection.describe()})", str(len(active.session.variables)),
                     str(len(active.session.history)), "now", f"current, {controller.state()}, not saved yet"))
        rows.sort(key=lambda row: row[0])
    context.renderer.table("sessions", ("name", "image", "variables", "history", "last used", "state"), rows)


def _new(context: Context, argument: str) -> None:
    name = _one_name(argument, "new")
    controller = context.controller
    controller.switch(name, create=True)
    context.renderer.info(f"new session {name}" + _on_image(controller))


def _on_image(controller: SessionController) -> str:
    return f" ({controller.attachment.describe()} image)" if controller.attachment else ""


def _save(context: Context, argument: str) -> None:
    controller = context.controller
    active = _active(context)
    if argument:
        name = _one_name(argument, "save")
        controller.copy_to(name)
        context.renderer.info(f"saved a copy of session {active.name} as {name} (you are still in {active.name})")
        return
    controller.save()
    context.renderer.info(f"saved session {active.name} ({controller.store.path(active.name)})")


def _restore(context: Context, argument: str) -> None:
    controller = context.controller
    active = _active(context)
    name = _one_name(argument, "restore") if argument else active.name
    if not controller.store.exists(name):
        raise UsageError(f"session {name} has not been saved yet" if name == active.name else f"no session named {name}")
    loaded = controller.load_session(name)
    variables = loaded.session.replay_order()
    own = name == active.name
    if not variables and not (own and loaded.session.code):
        context.renderer.info(f"session {name} has no saved variables")
        return
    if own:  # what the file says (edits by hand included), with what this stui has not saved yet
        controller.take_code()
        base = active.file.base.code if active.file.base is not None else []
        notes: list[MergeNote] = []
        active.session.code = merge_code(base, active.session.code, loaded.session.code, notes)
        for note in notes:
            context.renderer.warning(note.text)
    skipped = []
    for variable in variables:
        if variable.is_secret and variable.name in loaded.plaintexts:
            if name == active.name:
                active.plaintexts[variable.name] = loaded.plaintexts[variable.name]
                active.masker.add(loaded.plaintexts[variable.name])
            else:
                # Another session's secret: seal it for this one.
                active.set_secret(context.evaluator, variable.name, loaded.plaintexts[variable.name])
                continue
        elif variable.is_secret and name != active.name:
            skipped.append(variable.name)  # sealed for the other session, and locked: it cannot move
            continue
        active.session.variables[variable.name] = variable if name == active.name else _renumbered(active, variable)
    if skipped:
        context.renderer.warning(f"not restored, locked in session {name}: {', '.join(skipped)}")
    active.dirty = True
    report = active.restore(
        context.evaluator, [active.session.variables[v.name] for v in variables if v.name in active.session.variables], code=own
    )
    context.renderer.info(report.summary() or "nothing to restore")


def _renumbered(active: ActiveSession, variable: Variable) -> Variable:
    """A variable from another session goes after this session's own."""
    return replace(variable, order=active.session.next_order())


def _switch(context: Context, argument: str) -> None:
    name = _one_name(argument, "switch")
    context.controller.switch(name)
    context.renderer.info(f"session {name}" + _on_image(context.controller))


def _reconnect(context: Context, argument: str) -> None:
    context.renderer.info(context.controller.reconnect())


def _delete(context: Context, argument: str) -> None:
    name = _one_name(argument, "delete")
    controller = context.controller
    if controller.active is not None and controller.active.name == name:
        raise UsageError("cannot delete the session in use (:session switch to another one first)")
    if not controller.store.exists(name):
        raise UsageError(f"no session named {name}")
    if context.confirm is None or not context.confirm(f"delete session {name} and its backup? [y/N] "):
        context.renderer.info("not deleted")
        return
    with controller.store.locked(name):
        controller.store.delete(name)
    context.renderer.info(f"deleted session {name}")


def _rename(context: Context, argument: str) -> None:
    words = argument.split()
    if len(words) != 2:
        raise UsageError(":session rename takes OLD NEW")
    old, new = (_one_name(word, "rename") for word in words)
    context.controller.rename(old, new)
    context.renderer.info(f"renamed session {old} to {new}")


def _one_name(argument: str, subcommand: str) -> str:
    words = argument.split()
    if len(words) != 1:
        raise UsageError(f":session {subcommand} takes one session name")
    if not valid_session_name(words[0]):
        raise UsageError(f"{words[0]!r} is not a session name (letters, digits, '.', '_', '-')")
    return words[0]


SUBCOMMANDS: dict[str, tuple[str, str, Callable[[Context, str], None]]] = {
    "show": ("[NAME]", "the current session: file, image, state, counts; or what a saved one holds", _show),
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
_TAKES_SESSION = ("show", "switch", "restore", "delete", "rename")


def _complete_session(context: Context | None, typed: str) -> list[str]:
    words = typed.split(" ")
    if len(words) <= 1:
        return [name for name in SUBCOMMANDS if name.startswith(words[0])]
    if words[0] in _TAKES_SESSION and len(words) == 2 and context is not None:
        return [f"{words[0]} {name}" for name in context.controller.store.names() if name.startswith(words[1])]
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
    active = context.controller.active if context is not None else None
    return [recent.address for recent in active.session.recent] if active is not None else []


def _complete_connect(context: Context | None, typed: str) -> list[str]:
    return [address for address in [*_recent_addresses(context), "embedded"] if address.startswith(typed)]


@command("connect", "[HOST:PORT | embedded]", "move this session to another image, taking its variables along; alone, list recent images",
         complete=_complete_connect)
def _connect(context: Context, argument: str) -> None:
    controller = context.controller
    if not argument:
        active = controller.active
        rows = [(r.address, r.version, r.last_used[:19].replace("T", " ")) for r in (active.session.recent if active else [])]
        context.renderer.table("recent connections", ("address", "image", "last used"), rows)
        return
    address = None if argument == "embedded" else argument.split()[0]
    token = os.environ.get("STUI_TOKEN") or None
    try:
        report = controller.connect(address, token)
    except UsageError as exc:
        if "needs the server's token" not in str(exc) or context.ask_secret is None:
            raise
        token = context.ask_secret(f"token for {address} (not shown): ")
        if not token:
            raise UsageError("no token given; still on the same image") from None
        report = controller.connect(address, token)
    where = controller.attachment.describe() if controller.attachment else "?"
    restored = report.summary() if report is not None else None
    context.renderer.info(f"now on {where}" + (f"; {restored}" if restored else ""))


# -- variables and secrets ---------------------------------------------------------------


@command("secret", "NAME", "ask for a value without echo and bind it to NAME, kept encrypted in the session")
def _secret(context: Context, argument: str) -> None:
    words = argument.split()
    if len(words) != 1:
        raise UsageError(":secret takes only a name; the value is asked for without echo")
    name = words[0]
    active = _active(context)
    if context.ask_secret is None:
        raise UsageError(":secret needs a terminal to ask for the value")
    value = context.ask_secret(f"value of {name} (not shown): ")
    if not value:
        context.renderer.info("no value given; nothing changed")
        return
    active.set_secret(context.evaluator, name, value)
    context.renderer.info(f"{name} holds a secret; it is saved encrypted and shown as ********")


@command("unset", "NAME...", "remove variables from the image and from the session")
def _unset(context: Context, argument: str) -> None:
    names = argument.split()
    if not names:
        raise UsageError(":unset takes the names of variables to remove")
    active = context.controller.active
    for name in names:
        if active is not None:
            removed = active.unset(context.evaluator, name)
        else:
            removed = context.evaluator.remove_variable(name)
        if removed:
            hint = " (:session restore brings it back until the next save)" if active is not None else ""
            context.renderer.info(f"removed {name}{hint}")
        else:
            context.renderer.problem(f"no variable named {name}")
