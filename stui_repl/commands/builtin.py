"""The general meta-commands: :help, :quit, :trace, :vars, :inspect, :defects, :log, :set."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..client.wire import RemoteError
from ..errors import UsageError
from ..settings import BY_NAME, PREFERENCES, PreferenceError, Settings, lookup
from .registry import REGISTRY, Context, command

if TYPE_CHECKING:
    from ..session.active import ActiveSession


@command("help", "[COMMAND]", "list the meta-commands, or describe one")
def _help(context: Context, argument: str) -> None:
    entries = REGISTRY.commands()
    if argument:
        entry = REGISTRY.lookup(argument.removeprefix(":"))
        if entry is None:
            context.renderer.problem(f"no meta-command :{argument.removeprefix(':')}")
            return
        entries = [entry]
    rows = [
        (f":{e.name} {e.syntax}".rstrip(), e.help + (f" (also :{', :'.join(e.aliases)})" if e.aliases else ""))
        for e in entries
    ]
    context.renderer.table("meta-commands", ("command", "what it does"), rows)
    if argument and entries[0].details is not None:
        context.renderer.table(f":{entries[0].name}", ("command", "what it does"), entries[0].details())
    if not argument:
        context.renderer.info("Anything else is Smalltalk. Enter runs complete input; Ctrl-C interrupts; Ctrl-D quits.")


@command("quit", "", "leave stui", aliases=("q", "exit"))
def _quit(context: Context, argument: str) -> None:
    context.quit_requested = True


@command("trace", "", "show the stack of the last error")
def _trace(context: Context, argument: str) -> None:
    if context.last_error is None:
        context.renderer.info("no error yet")
    elif not context.last_error.stack:
        context.renderer.trace(context.last_error)
        context.renderer.info("(this error has no stack)")
    else:
        context.renderer.trace(context.last_error)


@command("vars", "", "list this workspace's variables, and how the session keeps each")
def _vars(context: Context, argument: str) -> None:
    bindings = context.evaluator.bindings()
    active = context.controller.active
    if active is None:
        rows = [(b.get("name", ""), b.get("class", ""), b.get("value", "")) for b in bindings]
        context.renderer.table("workspace variables", ("name", "class", "value"), rows)
        return
    kept = active.session.variables
    rows = []
    for binding in bindings:
        name = str(binding.get("name", ""))
        rows.append((name, str(binding.get("class", "")), str(binding.get("value", "")), _kept_as(active, name)))
    in_image = {row[0] for row in rows}
    for variable in active.session.replay_order():
        if variable.name not in in_image:
            rows.append((variable.name, variable.value_class, variable.value, _kept_as(active, variable.name) + ", not in the image"))
    rows.sort(key=lambda row: row[0])
    context.renderer.table(f"workspace variables (session {active.name})", ("name", "class", "value", "saved as"), rows)
    if any(name not in kept for name in in_image):
        context.renderer.info("(variables marked 'not yet' are saved at the next save)")


def _kept_as(active: ActiveSession, name: str) -> str:
    variable = active.session.variables.get(name)
    if variable is None:
        return "not yet"
    return variable.kept_as + (", locked" if name in active.locked else "")


@command("inspect", "EXPR", "show an object's class and instance variables")
def _inspect(context: Context, argument: str) -> None:
    if not argument:
        context.renderer.problem(":inspect needs an expression, e.g. :inspect 3 @ 4")
        return
    reply = context.evaluator.inspect(argument)
    if not reply.get("ok"):
        error = RemoteError.from_wire(reply.get("error"))
        context.last_error = error
        context.renderer.error(error)
        return
    context.renderer.info(f"{reply.get('value', '')}  ({reply.get('class', '?')})")
    rows = [(slot.get("name", ""), slot.get("class", ""), slot.get("value", "")) for slot in reply.get("named", ())]
    rows += [(f"[{slot.get('index')}]", slot.get("class", ""), slot.get("value", "")) for slot in reply.get("indexed", ())]
    size = int(reply.get("size", 0) or 0)
    if rows:
        context.renderer.table("slots", ("slot", "class", "value"), rows)
    if size > len(reply.get("indexed", ())):
        context.renderer.info(f"({size} indexed slots in all, first {len(reply.get('indexed', ()))} shown)")


@command("defects", "", "list the image's known defects and what stui does about them")
def _defects(context: Context, argument: str) -> None:
    info = context.evaluator.connection.info
    defects = info.defects if info else ()
    rows = [
        (str(d.get("id", "")), "worked around" if d.get("workedAround") else "open", str(d.get("summary", "")))
        for d in defects
    ]
    context.renderer.table("known defects of this image", ("defect", "state", "what goes wrong"), rows)


@command("log", "", "show what the image wrote that no workspace owns (the server's log)")
def _log(context: Context, argument: str) -> None:
    text = context.evaluator.log()
    if not text:
        context.renderer.info("the image's log is empty")
        return
    context.renderer.output(text if text.endswith("\n") else text + "\n")


def _complete_set(context: Context | None, typed: str) -> list[str]:
    words = typed.split(" ")
    if len(words) <= 1:
        return [p.name for p in PREFERENCES if p.name.startswith(words[0])]
    if words[0] not in BY_NAME or len(words) != 2:
        return []
    values = Settings().values_of(words[0])
    return [f"{words[0]} {value}" for value in [*values, "default"] if value.startswith(words[1])]


@command("set", "[NAME [VALUE]]", "show the settings, or change one for this session (VALUE default resets it)", complete=_complete_set)
def _set(context: Context, argument: str) -> None:
    controller = context.controller
    settings = controller.settings
    name, _, value = argument.partition(" ")
    value = value.strip()
    if not name or not value:
        try:
            rows = settings.rows([name] if name else None)
        except PreferenceError as exc:
            raise UsageError(str(exc)) from None
        context.renderer.table("settings", ("name", "value", "from", "what it does"), rows)
        known = settings.values_of(name) if name else []
        if len(known) > 2:
            context.renderer.info("allowed: " + ", ".join(known))
        return
    try:
        preference = lookup(name)
        parsed = None if value == "default" else preference.parse(value)
    except PreferenceError as exc:
        raise UsageError(str(exc)) from None
    if parsed is None:
        settings.session.pop(name, None)
    else:
        settings.session[name] = parsed
    if controller.active is not None:
        if parsed is None:
            controller.active.session.preferences.pop(name, None)
        else:
            controller.active.session.preferences[name] = parsed
        controller.active.dirty = True
    where = f"for session {controller.active.name}" if controller.active else "until stui exits"
    shown = preference.show(settings[name])
    if name in settings.flags:
        context.renderer.info(f"{name} stays {shown}: the command line sets it")
        return
    context.renderer.info(f"{name} = {shown} {where}")
