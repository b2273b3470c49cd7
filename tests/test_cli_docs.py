"""The man page and the shell completions, kept in step with the code.

One source of truth: the options come from the argparse parsers of
stui_repl/cli.py (with the subcommands of `stui session` and `stui key`, and
`stui config`), the meta-commands from stui_repl.commands.REGISTRY (with the
subcommands of `:session`), the settings from stui_repl.settings. Each
must appear in `stui --help`, in man/stui.1 and in every completion script,
and nothing else may: an option named there must exist in a parser. The man
page must lint clean under groff and mandoc, and the completion scripts are
loaded into real bash, zsh and fish to check what they complete, session
names included. docs/session-format.md and `stui config --example` are
checked against the code they describe.

Tools that are missing are skipped with the reason; on Debian:
`apt-get install groff mandoc bash-completion zsh fish`.
"""

from __future__ import annotations

import argparse
import inspect
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from prompt_toolkit.buffer import Buffer

from stui_repl import __version__, cli, config, errors
from stui_repl import settings as preferences
from stui_repl.commands import REGISTRY
from stui_repl.session import model as session_model
from stui_repl.session import toml as session_format

ROOT = Path(__file__).resolve().parents[1]
MAN_PAGE = ROOT / "man" / "stui.1"
COMPLETIONS = ROOT / "completions"
BASH_SCRIPT = COMPLETIONS / "stui.bash"
ZSH_SCRIPT = COMPLETIONS / "_stui"
FISH_SCRIPT = COMPLETIONS / "stui.fish"
FORMAT_DOC = ROOT / "docs" / "session-format.md"
BASH_COMPLETION = Path("/usr/share/bash-completion/bash_completion")

# The first argument of `stui` that picks a parser other than the main one (see cli.main).
PARSERS: dict[str, Callable[[], argparse.ArgumentParser]] = {
    "stui": cli.build_parser,
    "serve": cli.build_serve_parser,
    "setup": cli.build_setup_parser,
    "session": cli.build_session_parser,
    "key": cli.build_key_parser,
    "config": cli.build_config_parser,
}
# Options of other programs that the man page shows (`ssh -N -L` and `sed -i` in
# EXAMPLES, `less -R` for the pager).
FOREIGN_OPTIONS = {"-L", "-N", "-i", "-R"}
# Options of a command line, in prose or code: `-c`, `--token-file`.
OPTION = re.compile(r"(?<![\w/-])(--?[A-Za-z][\w-]*)")
LONG_OPTION = re.compile(r"(?<![\w/-])(--[A-Za-z][\w-]*)")


def subparsers_of(parser: argparse.ArgumentParser) -> argparse._SubParsersAction | None:
    found = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return found[0] if found else None


def all_commands() -> dict[str, argparse.ArgumentParser]:
    """Every parser, by its command: "stui", "serve", ..., "session list", ..., "key rotate"."""
    commands: dict[str, argparse.ArgumentParser] = {}
    for command, build in PARSERS.items():
        parser = commands[command] = build()
        action = subparsers_of(parser)
        for name, subparser in (action.choices if action else {}).items():
            commands[f"{command} {name}"] = subparser
    return commands


COMMANDS = all_commands()
# Commands made of subcommands (`stui session list`), documented in SESSIONS;
# the others have their options in OPTIONS, except those documented form by
# form (`stui config --example`) in a section of their own.
GROUPS = [command for command in PARSERS if subparsers_of(COMMANDS[command])]
FORMS = {"config": "CONFIGURATION"}
# What every subcommand of a group takes besides its own options.
COMMON = {"-h", "--help", "--debug"}


def options_of(command: str) -> set[str]:
    return {name for action in COMMANDS[command]._actions for name in action.option_strings}


def positionals_of(command: str) -> list[str]:
    return [a.metavar or a.dest for a in COMMANDS[command]._actions if not a.option_strings]


def subcommand_help(group: str) -> dict[str, str]:
    action = subparsers_of(COMMANDS[group])
    assert action is not None
    return {choice.dest: choice.help or "" for choice in action._choices_actions}


ALL_OPTIONS = set().union(*(options_of(command) for command in COMMANDS))


def format_choices() -> list[str]:
    (action,) = [a for a in cli.build_parser()._actions if "--format" in a.option_strings]
    return list(action.choices)


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (apt-get install {tool})")
    return path


def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    # The timeout only stops a hung shell: a loaded machine may take its time.
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False, **kwargs)


# --------------------------------------------------------------------------
# stui --help


@pytest.mark.parametrize("command", COMMANDS)
def test_help_names_every_option_and_only_real_ones(command: str) -> None:
    words = [] if command == "stui" else command.split()
    argv = [sys.executable, "-m", "stui_repl", *words, "--help"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "100"}
    done = run(argv, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr
    named = set(OPTION.findall(done.stdout))
    assert options_of(command) <= named, f"missing from `{' '.join(argv[3:])}`"
    assert named <= ALL_OPTIONS, "the help text names options that do not exist"
    if command in GROUPS:
        listed = set(re.findall(r"^    (\S+)", done.stdout, re.MULTILINE))
        assert set(subcommand_help(command)) <= listed


# --------------------------------------------------------------------------
# man page: content


def roff_text(source: str) -> str:
    """The words of roff source: escapes resolved, font changes dropped."""
    text = source.replace(r"\-", "-").replace(r"\(aq", "'").replace(r"\e", "\\")
    text = re.sub(r"\\f[BIRP]|\\c|\\&|\\ ", lambda m: " " if m.group() == r"\ " else "", text)
    return text


def man_sections() -> dict[str, list[str]]:
    """Section name -> its lines (roff source), comments dropped."""
    sections: dict[str, list[str]] = {}
    current = None
    for line in MAN_PAGE.read_text().splitlines():
        if line.startswith('.\\"'):
            continue
        if line.startswith(".SH "):
            current = roff_text(line[4:]).strip('"')
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
    return sections


def paragraphs(lines: list[str]) -> list[tuple[str, list[str]]]:
    """(tag line, body lines) of each .TP paragraph, in roff source.

    A nested list (.RS, .TP ..., .RE) stays in the body of the paragraph it
    belongs to; nested_paragraphs() takes it apart.
    """
    entries: list[tuple[str, list[str]]] = []
    current: list[str] | None = None
    depth = 0
    lines_left = iter(lines)
    for line in lines_left:
        if depth == 0 and line == ".TP":
            current = []
            entries.append((next(lines_left, ""), current))
            continue
        if depth == 0 and line.startswith((".PP", ".SS", ".SH")):
            current = None
            continue
        if line.startswith(".RS"):
            depth += 1
        elif line.startswith(".RE"):
            depth = max(depth - 1, 0)
        if current is not None:
            current.append(line)
    return entries


def nested_paragraphs(body: list[str]) -> list[tuple[str, list[str]]]:
    """The .TP paragraphs of the lists indented (.RS) in a paragraph's body."""
    inner: list[str] = []
    depth = 0
    for line in body:
        if line.startswith(".RS"):
            depth += 1
            if depth == 1:
                inner.append(".PP")  # each indented block is a list of its own
                continue
        elif line.startswith(".RE"):
            depth -= 1
            if depth == 0:
                continue
        if depth > 0:
            inner.append(line)
    return paragraphs(inner)


def plain(lines: list[str]) -> str:
    """Roff source lines as one line of words."""

    def words(line: str) -> str:
        line = re.sub(r"^\.[A-Z]{1,2}\b ?", "", line)
        return " ".join(roff_text(line).replace('"', " ").split())

    return " ".join(word for word in map(words, lines) if word)


def tagged_paragraphs(lines: list[str]) -> list[tuple[str, str]]:
    """(tag, body) of each .TP paragraph, both as plain text."""
    return [(plain([tag]), plain(body)) for tag, body in paragraphs(lines)]


def subsections(section: str) -> dict[str, list[str]]:
    """A section's .SS by title, without "stui": "stui serve" -> "serve"; "stui" stays."""
    result: dict[str, list[str]] = {}
    current = None
    for line in man_sections()[section]:
        if line.startswith(".SS "):
            current = roff_text(line[4:]).strip('"').removeprefix("stui").strip() or "stui"
            result[current] = []
        elif current is not None:
            result[current].append(line)
    return result


def test_man_page_has_the_sections() -> None:
    expected = [
        "NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "THE PROMPT", "SESSIONS", "META-COMMANDS", "SESSION FILES",
        "CONFIGURATION", "ENVIRONMENT", "FILES", "DIFFERENCES FROM GST", "EXIT STATUS", "SECURITY", "EXAMPLES", "SEE ALSO",
    ]
    assert list(man_sections()) == expected
    (title,) = [line for line in MAN_PAGE.read_text().splitlines() if line.startswith(".TH ")]
    assert f'"stui {__version__}"' in title, ".TH names another version"
    assert "gst (1)" in roff_text(" ".join(man_sections()["SEE ALSO"]))


@pytest.mark.parametrize("command", [c for c in PARSERS if c not in GROUPS and c not in FORMS])
def test_man_page_documents_exactly_the_options(command: str) -> None:
    found = subsections("OPTIONS")
    assert set(found) == {c for c in PARSERS if c not in GROUPS and c not in FORMS}, "OPTIONS needs one .SS per command"
    tags = [tag for tag, _ in tagged_paragraphs(found[command])]
    documented = {name for tag in tags for name in OPTION.findall(tag)}
    assert documented == options_of(command)


@pytest.mark.parametrize("command", FORMS)
def test_man_page_documents_exactly_the_forms(command: str) -> None:
    """`stui config` has a .SS in CONFIGURATION, a .TP per form: bare, then each option of its own."""
    found = subsections(FORMS[command])
    assert command in found, f"{FORMS[command]} needs a .SS for stui {command}"
    lines = found[command]
    intro = plain(lines[: lines.index(".TP")] if ".TP" in lines else lines)
    assert COMMON <= options_of(command) and COMMON <= set(OPTION.findall(intro)), "the options every form takes"
    own = [a for a in COMMANDS[command]._actions if a.option_strings and not set(a.option_strings) & COMMON]
    entries = tagged_paragraphs(lines)
    wanted = [f"stui {command}"] + [f"stui {command} {' '.join(a.option_strings)}" for a in own]
    assert [tag for tag, _ in entries] == wanted, "the forms, in the order of `--help`"
    for action, (_, body) in zip(own, entries[1:], strict=True):
        assert action.help and action.help.lower() in body.lower(), f"help of stui {command} {action.option_strings}"


@pytest.mark.parametrize("group", GROUPS)
def test_man_page_documents_exactly_the_subcommands(group: str) -> None:
    """SESSIONS has a .SS per group (`stui session`), a .TP per subcommand with its synopsis."""
    found = subsections("SESSIONS")
    assert set(GROUPS) <= set(found), "SESSIONS needs a .SS for each of " + ", ".join(GROUPS)
    lines = found[group]
    intro = plain(lines[: lines.index(".TP")] if ".TP" in lines else lines)
    assert options_of(group) == COMMON and COMMON <= set(OPTION.findall(intro)), "the options every subcommand takes"
    entries = tagged_paragraphs(lines)
    prefix = f"stui {group} "
    assert all(tag.startswith(prefix) for tag, _ in entries), f"every entry is a `{prefix}...` synopsis"
    by_name = {tag.removeprefix(prefix).split()[0]: (tag, body) for tag, body in entries}
    helps = subcommand_help(group)
    assert list(by_name) == list(helps), "the subcommands, in the order of `--help`"
    for name, text in helps.items():
        tag, body = by_name[name]
        command = f"{group} {name}"
        assert set(OPTION.findall(tag)) == options_of(command) - COMMON, f"options of stui {command}"
        assert [w for w in tag.split() if w in positionals_of(command)] == positionals_of(command), f"stui {command}"
        assert text.lower() in body.lower(), f"help of stui {command}"
        for option in options_of(command) - COMMON:
            assert option in OPTION.findall(body), f"{option} of stui {command} is not explained"


def test_man_page_names_no_other_options() -> None:
    text = roff_text(MAN_PAGE.read_text())
    assert set(OPTION.findall(text)) - FOREIGN_OPTIONS <= ALL_OPTIONS
    synopsis = roff_text("\n".join(man_sections()["SYNOPSIS"]))
    assert set(OPTION.findall(synopsis)) <= ALL_OPTIONS
    for command in COMMANDS:  # each option, in one of its spellings
        for action in COMMANDS[command]._actions:
            assert set(OPTION.findall(synopsis)) & set(action.option_strings) or not action.option_strings, (
                f"SYNOPSIS lacks {action.option_strings} ({command})"
            )
    for command in COMMANDS:
        if command not in PARSERS:
            assert f"stui {command}" in " ".join(synopsis.split()), f"SYNOPSIS lacks stui {command}"


def test_man_page_documents_exactly_the_meta_commands() -> None:
    entries = [(plain([tag]), plain(body), body) for tag, body in paragraphs(man_sections()["META-COMMANDS"])]
    named = {m for tag, body, _ in entries for m in re.findall(r"(?<![\w:]):([a-z][\w-]*)", f"{tag} {body}")}
    assert named == set(REGISTRY.names())  # every name and alias, and no others
    by_name = {tag.split()[0].removeprefix(":"): (tag, body, lines) for tag, body, lines in entries}
    for entry in REGISTRY.commands():
        tag, body, lines = by_name[entry.name]
        assert tag == f":{entry.name} {entry.syntax}".strip(), f"syntax of :{entry.name}"
        assert entry.help.lower() in body.lower(), f"help of :{entry.name}"
        for alias in entry.aliases:
            assert f":{alias}" in body
        if entry.details is not None:  # `:help session` lists its subcommands: so must the man page
            nested = [(plain([t]), plain(b)) for t, b in nested_paragraphs(lines)]
            assert [t for t, _ in nested] == [syntax for syntax, _ in entry.details()], f"subcommands of :{entry.name}"
            for (_, nested_body), (syntax, text) in zip(nested, entry.details(), strict=True):
                assert text.lower() in nested_body.lower(), f"help of {syntax}"


def test_man_page_documents_exactly_the_settings() -> None:
    """`:set` lists every setting with what it does and its default."""
    (lines,) = [body for tag, body in paragraphs(man_sections()["META-COMMANDS"]) if plain([tag]).startswith(":set ")]
    nested = [(plain([t]), plain(b)) for t, b in nested_paragraphs(lines)]
    assert [tag.split()[0] for tag, _ in nested] == [p.name for p in preferences.PREFERENCES]
    for (tag, body), preference in zip(nested, preferences.PREFERENCES, strict=True):
        assert preference.help.lower() in body.lower(), f"help of {preference.name}"
        default = preference.show(preference.default)
        assert re.search(rf"\bdefault:? {re.escape(default)}\b", body.lower()), f"default of {preference.name}"
        for choice in preference.choices:
            assert choice in tag, f"{preference.name} {choice}"


def test_man_page_documents_environment_and_exit_statuses() -> None:
    sources = "\n".join(p.read_text() for p in (ROOT / "stui_repl").rglob("*.py"))
    used = set(re.findall(r"""["']((?:STUI|XDG)_[A-Z_]+)["']""", sources))
    assert {"STUI_HOME", "STUI_GST", "STUI_TOKEN", "STUI_PASSPHRASE", "XDG_CACHE_HOME"} <= used
    # Other variables stui reads itself (PATH only to find gst, under STUI_GST).
    read = set(re.findall(r"""environ(?:\.get\(|\[)["']([A-Z][A-Z_]*)["']""", sources)) - {"PATH"}
    assert {"NO_COLOR", "PAGER", "LESS"} <= read
    # The editor of Ctrl-X Ctrl-E is prompt_toolkit's to choose.
    editor = set(re.findall(r"""environ\.get\(["']([A-Z]+)["']""", inspect.getsource(Buffer._open_file_in_editor)))
    assert editor == {"VISUAL", "EDITOR"}
    tags = [tag for tag, _ in tagged_paragraphs(man_sections()["ENVIRONMENT"])]
    environment = {name for tag in tags for name in re.split(r"\s*,\s*", tag)}
    assert environment == used | read | editor

    statuses = {value for name, value in vars(errors).items() if name.startswith("EXIT_")} | {130}
    documented = {int(tag) for tag, _ in tagged_paragraphs(man_sections()["EXIT STATUS"])}
    assert documented == statuses


# --------------------------------------------------------------------------
# man page: lint


def test_man_page_groff_has_no_warnings() -> None:
    done = run([need("groff"), "-man", "-ww", "-z", str(MAN_PAGE)])
    assert done.returncode == 0 and done.stderr == "" and done.stdout == "", done.stderr


def test_man_page_mandoc_lint_is_clean() -> None:
    done = run([need("mandoc"), "-Tlint", str(MAN_PAGE)])
    assert done.returncode == 0 and done.stderr == "" and done.stdout == "", done.stdout + done.stderr


# --------------------------------------------------------------------------
# docs/session-format.md


def format_doc_example() -> str:
    """The annotated example: the first ```toml block."""
    match = re.search(r"```toml\n(.*?)```", FORMAT_DOC.read_text(), re.DOTALL)
    assert match, f"{FORMAT_DOC.name} has no ```toml example"
    return match.group(1)


def test_format_doc_example_is_a_session_stui_reads_whole() -> None:
    text = format_doc_example()
    session = session_format.parse(text)
    assert f"format = {session_format.FORMAT}" in text
    assert text.startswith(session_format.HEADER) and session_format.HISTORY_HEADER in text, "stui's own comments"
    assert session.image is not None and session.connection.address and session.connection.token and session.recent
    assert set(session.preferences) == {p.name for p in preferences.PREFERENCES}, "every setting, in [preferences]"
    for name, value in session.preferences.items():
        preferences.lookup(name).validate(value)
    fields = {key for table in tomllib.loads(text)["variables"].values() for key in table}
    assert fields == {"class", "value", "store", "source", "secret", "order", "changed"}
    inputs = [entry for _, entry in session.history]
    assert any("\n" in entry for entry in inputs), "a multi-line input"
    assert any("\\" in entry for entry in inputs) and any("'''" in entry for entry in inputs), "escapes"


def test_format_doc_states_the_limits() -> None:
    text = FORMAT_DOC.read_text()
    default_limit = preferences.BY_NAME["history_limit"].default
    for number in (session_model.VALUE_CHARS, session_model.STORE_CHARS, f"{default_limit:,}"):
        assert re.search(rf"(?<![\d,]){number}(?![\d,])", text), f"{number} is not stated"
    assert f"(format {session_format.FORMAT})" in text.splitlines()[0]


# --------------------------------------------------------------------------
# stui config --example

# A setting's line in the example, commented out: `# name = value`.
EXAMPLE_SETTING = re.compile(r"^# ([a-z_]+) = ")


def config_example(tmp_path: Path) -> list[str]:
    """The lines `stui config --example` prints."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "STUI_HOME": str(tmp_path / "stui-home")}
    done = run([sys.executable, "-m", "stui_repl", "config", "--example"], cwd=ROOT, env=env)
    assert done.returncode == 0 and not done.stderr, done.stderr
    return done.stdout.splitlines()


def example_setting(line: str) -> str | None:
    match = EXAMPLE_SETTING.match(line)
    return match.group(1) if match and match.group(1) in preferences.BY_NAME else None


def test_config_example_uncommented_is_every_default(tmp_path: Path) -> None:
    lines = config_example(tmp_path)
    named = [name for name in map(example_setting, lines) if name]
    assert named == [p.name for p in preferences.PREFERENCES], "every setting once, in the table's order"
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + "\n")
    assert config.load(path) == ({}, []), "as printed, it sets nothing"

    path.write_text("\n".join(line[2:] if example_setting(line) else line for line in lines) + "\n")
    values, problems = config.load(path)
    assert problems == []
    assert values == {p.name: p.default for p in preferences.PREFERENCES}
    for preference in preferences.PREFERENCES:
        assert type(values[preference.name]) is type(preference.default), preference.name


def test_config_example_explains_every_setting(tmp_path: Path) -> None:
    """Each setting's line comes after a comment with its help and the values it allows."""
    lines = config_example(tmp_path)
    at = {example_setting(line): index for index, line in enumerate(lines) if example_setting(line)}
    for preference in preferences.PREFERENCES:
        start = end = at[preference.name]
        while start > 0 and lines[start - 1].startswith("# ") and not example_setting(lines[start - 1]):
            start -= 1
        comment = " ".join(line.removeprefix("# ") for line in lines[start:end]).lower()
        assert preference.help.lower() in comment, f"help of {preference.name}"
        allowed = [f'"{choice}"' for choice in preference.choices] or (["true", "false"] if preference.kind == "bool" else [])
        for value in allowed:
            assert value in comment, f"{preference.name} allows {value}"


# --------------------------------------------------------------------------
# completion scripts: text


def completion_script_options(path: Path) -> set[str]:
    text = path.read_text()
    named = set(LONG_OPTION.findall(text))
    if path.suffix == ".fish":  # complete -c stui ... -s x -l name
        spec = "\n".join(line for line in text.splitlines() if line.startswith("complete "))
        named |= {f"-{s}" for s in re.findall(r"\s-s\s+(\S+)", spec)}
        named |= {f"--{s}" for s in re.findall(r"\s-l\s+(\S+)", spec)}
    return named


@pytest.mark.parametrize("script", [BASH_SCRIPT, ZSH_SCRIPT, FISH_SCRIPT], ids=lambda p: p.name)
def test_completion_scripts_name_only_real_long_options(script: Path) -> None:
    named = completion_script_options(script)
    assert named <= ALL_OPTIONS
    assert {o for o in ALL_OPTIONS if o.startswith("--")} <= named


# --------------------------------------------------------------------------
# completion scripts: loaded into the real shells
#
# Each case: a command line (completed at its end) and the matches wanted,
# exactly. Options lists are exactly the parser's: all of them, none invented.
# Session names come from `stui session list --names`, run by the scripts
# through a `stui` on PATH that runs this checkout and logs its arguments.

SESSIONS = {"work", "scratch-2"}


def completion_cases() -> list[tuple[str, set[str]]]:
    return [
        ("stui -", options_of("stui")),
        ("stui serve -", options_of("serve")),
        ("stui setup -", options_of("setup")),
        ("stui --fo", {"--format"}),
        ("stui --format ", set(format_choices())),
        ("stui --format j", {"json"}),
        ("stui ", set(PARSERS) - {"stui"}),
        ("stui se", {"serve", "setup", "session"}),
        ("stui serve --", {o for o in options_of("serve") if o.startswith("--")}),
        ("stui -q se", set()),  # a subcommand is only ever the first argument
        ("stui -f he", {"hello.st"}),
        ("stui --token-file se", {"secret.token"}),
        ("stui serve --token-file se", {"secret.token"}),
        ("stui -c ", set()),
        ("stui --connect ", set()),
        # sessions
        ("stui --session ", SESSIONS),
        ("stui --session w", {"work"}),
        ("stui -q --session s", {"scratch-2"}),
        ("stui --embedded --session ", SESSIONS),
        ("stui session ", set(subcommand_help("session"))),
        ("stui session l", {"list"}),
        ("stui session -", options_of("session")),
        ("stui session list -", options_of("session list")),
        ("stui session show ", SESSIONS),
        ("stui session delete ", SESSIONS),
        ("stui session delete --yes w", {"work"}),
        ("stui session delete -", options_of("session delete")),
        ("stui session rename ", SESSIONS),
        ("stui session rename work ", set()),  # NEW: a name not taken yet
        ("stui session export s", {"scratch-2"}),
        ("stui session import he", {"hello.st"}),
        ("stui session import --as ", set()),
        ("stui session import -", options_of("session import")),
        ("stui key ", set(subcommand_help("key"))),
        ("stui key -", options_of("key")),
        ("stui key rotate -", options_of("key rotate")),
        # stui config: --example and --path exclude each other
        ("stui co", {"config"}),
        ("stui config -", options_of("config")),
        ("stui config --", {o for o in options_of("config") if o.startswith("--")}),
        ("stui config --example -", options_of("config") - {"--example", "--path"}),
        ("stui config --path --", {"--help", "--debug"}),
        ("stui --vi --no-color -q s", set()),  # a subcommand is only ever the first argument
    ]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A directory with a few files to complete."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "hello.st").write_text("'hello' displayNl.\n")
    (work / "secret.token").write_text("0123\n")
    (work / "other.txt").write_text("")
    return work


def make_stui_home(tmp_path: Path, sessions: set[str]) -> Path:
    """A STUI_HOME holding minimal session files (and what else a sessions directory holds)."""
    home = tmp_path / "stui-home"
    directory = home / "state" / "sessions"
    directory.mkdir(parents=True, exist_ok=True)
    for name in sessions:
        (directory / f"{name}.toml").write_text("format = 1\n")
        (directory / f"{name}.toml.bak").write_text("format = 1\n")
        (directory / f".{name}.lock").write_text("")
    return home


def files_under(directory: Path) -> set[Path]:
    return set(directory.rglob("*"))


def shell_env(tmp_path: Path, sessions: set[str] = SESSIONS) -> dict[str, str]:
    """A clean environment that keeps the shells out of the real $HOME, with a logging `stui` first on PATH."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    wrapper = bin_dir / "stui"
    wrapper.write_text(
        "#!/bin/sh\n"
        'printf \'%s\\n\' "$*" >> "$STUI_CALLS"\n'
        f"PYTHONPATH='{ROOT}' PYTHONDONTWRITEBYTECODE=1 exec '{sys.executable}' -m stui_repl \"$@\"\n"
    )
    wrapper.chmod(0o755)
    return {
        "PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}", "HOME": str(home), "TERM": "dumb",
        "LANG": "C.UTF-8", "XDG_CONFIG_HOME": str(home / ".config"), "XDG_DATA_HOME": str(home / ".local/share"),
        "XDG_CACHE_HOME": str(home / ".cache"), "XDG_RUNTIME_DIR": str(home),
        "STUI_HOME": str(make_stui_home(tmp_path, sessions)), "STUI_CALLS": str(tmp_path / "stui-calls.log"),
    }


def check_stui_calls(env: dict[str, str], before: set[Path]) -> None:
    """The scripts ran stui only to list the session names (no image, nothing written), and did run it."""
    log = Path(env["STUI_CALLS"])
    calls = log.read_text().splitlines() if log.exists() else []
    assert calls, "session names were not asked of stui"
    assert set(calls) == {"session list --names"}
    assert files_under(Path(env["STUI_HOME"])) == before, "completing changed STUI_HOME"


def split_results(stdout: str, count: int) -> list[set[str]]:
    """Output of `@@ <case>` blocks, one match per line (an empty line is an empty match)."""
    blocks = stdout.split("@@\n")[1:]
    assert len(blocks) == count, stdout
    return [set(block.splitlines()) for block in blocks]


def check(cases: list[tuple[str, set[str]]], results: list[set[str]]) -> None:
    wrong = {line: (got, want) for (line, want), got in zip(cases, results, strict=True) if got != want}
    assert not wrong, "\n".join(f"{line!r}: got {sorted(got)}, want {sorted(want)}" for line, (got, want) in wrong.items())


# Call the function that `complete -p stui` names, as readline would.
BASH_HARNESS = r"""
__function=$(complete -p stui 2>/dev/null | sed -n 's/.* -F \([^ ]*\) .*/\1/p')
[[ -n $__function ]] || { echo "the script registers no completion function for stui" >&2; exit 4; }
__complete() {  # words of the command line; the last one is completed
    COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
    COMPREPLY=()
    "$__function" stui "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}" 2>/dev/null
    printf '@@\n'
    ((${#COMPREPLY[@]} == 0)) || printf '%s\n' "${COMPREPLY[@]}"
}
"""


def bash_results(
    cases: list[tuple[str, set[str]]], cwd: Path, env: dict[str, str], *, with_bash_completion: bool = False
) -> list[set[str]]:
    lines = [f". {BASH_COMPLETION}"] if with_bash_completion else []
    lines += [f". {BASH_SCRIPT}", BASH_HARNESS]
    for line, _ in cases:
        words = line.replace("=", " = ").split(" ")  # COMP_WORDBREAKS splits at `=` too
        if words[-2:] == ["=", ""]:
            words.pop()  # the cursor is right after `=`: that is the current word
        lines.append("__complete " + " ".join(f"'{w}'" for w in words))
    done = run([need("bash"), "--norc", "--noprofile", "-c", "\n".join(lines)], cwd=cwd, env=env)
    assert done.returncode == 0, done.stderr
    return split_results(done.stdout, len(cases))


@pytest.mark.parametrize("with_bash_completion", [False, True], ids=["plain", "bash-completion"])
def test_bash_completes(tmp_path: Path, workdir: Path, with_bash_completion: bool) -> None:
    need("bash")
    if with_bash_completion and not BASH_COMPLETION.exists():
        pytest.skip(f"{BASH_COMPLETION} missing (apt-get install bash-completion)")
    cases = completion_cases() + [
        ("stui --format=", set(format_choices())),  # bash splits at `=`
        ("stui --format=j", {"json"}),
        ("stui --token-file=se", {"secret.token"}),
        ("stui --session=", SESSIONS),
        ("stui session import --as=", set()),
    ]
    env = shell_env(tmp_path)
    before = files_under(Path(env["STUI_HOME"]))
    check(cases, bash_results(cases, workdir, env, with_bash_completion=with_bash_completion))
    check_stui_calls(env, before)


ZSH_SETUP = r"""
fpath=({completions} $fpath)
autoload -Uz compinit && compinit -u -D
unsetopt AUTO_LIST LIST_BEEP BEEP
PS1='<ZP>'
# Record what completion offers: every call of compadd that adds matches
# (rather than only filtering them with -O, -A or -D) is asked for its
# matches with -A, then goes ahead.
compadd() {{
    if (( ${{argv[(I)-[OAD]]}} )); then
        builtin compadd "$@"
        return
    fi
    local -a __found
    builtin compadd -A __found "$@"
    (( $#__found )) && print -rl -- "${{__found[@]}}" >> $__CAPTURE
    builtin compadd "$@"
}}
"""

# In a zpty (a real terminal, so a real ZLE), type each line and Tab, then
# clear the line. Keys are sent only once the prompt is up (keys typed ahead
# while ZLE starts may be lost); a print after each step says when zsh got there.
ZSH_DRIVER = r"""
zmodload zsh/zpty || exit 3
zpty stui zsh -f -i
zpty -w stui "source ${0:h}/setup.zsh; print -r -- X\${:-READY}"
zpty -r stui out '*XREADY*'
zpty -r stui out '*<ZP>*'
integer i=0
for line in "$@"; do
    (( ++i ))
    zpty -w stui "__CAPTURE=${0:h}/capture.$i; : > \$__CAPTURE; print -r -- X\${:-SET}$i"
    zpty -r stui out "*XSET$i*"
    zpty -r stui out '*<ZP>*'
    zpty -wn stui "$line"$'\t'
    zpty -w stui $'\C-u'"print -r -- X\${:-DONE}$i"
    zpty -r stui out "*XDONE$i*"
    zpty -r stui out '*<ZP>*'
    print -r -- @@
    cat ${0:h}/capture.$i
done
zpty -d stui
"""


def zsh_results(cases: list[tuple[str, set[str]]], cwd: Path, env: dict[str, str], harness: Path) -> list[set[str]]:
    zsh = need("zsh")
    harness.mkdir()
    (harness / "setup.zsh").write_text(ZSH_SETUP.format(completions=COMPLETIONS))
    (harness / "driver.zsh").write_text(ZSH_DRIVER)
    done = run([zsh, "-f", str(harness / "driver.zsh"), *(line for line, _ in cases)], cwd=cwd, env=env)
    if done.returncode == 3:
        pytest.skip("zsh has no zsh/zpty module")
    assert done.returncode == 0, done.stderr
    return split_results(done.stdout, len(cases))


def test_zsh_completes(tmp_path: Path, workdir: Path) -> None:
    cases = completion_cases() + [("stui --format=j", {"json"}), ("stui --session=w", {"work"})]
    env = shell_env(tmp_path)
    before = files_under(Path(env["STUI_HOME"]))
    check(cases, zsh_results(cases, workdir, env, tmp_path / "zsh"))
    check_stui_calls(env, before)


def fish_results(cases: list[tuple[str, set[str]]], cwd: Path, env: dict[str, str]) -> list[set[str]]:
    script = [f"source {FISH_SCRIPT}"]
    for line, _ in cases:
        quoted = line.replace("\\", "\\\\").replace("'", "\\'")
        script.append(f"echo @@; complete -C '{quoted}' | string replace -r '\\t.*' ''")
    script.append("true")  # `string replace` fails when a case has no match
    done = run([need("fish"), "--no-config", "-c", "\n".join(script)], cwd=cwd, env=env)
    assert done.returncode == 0 and not done.stderr, done.stderr
    return split_results(done.stdout, len(cases))


def test_fish_completes(tmp_path: Path, workdir: Path) -> None:
    cases = completion_cases() + [
        ("stui --format=", {f"--format={c}" for c in format_choices()}),
        ("stui --session=", {f"--session={name}" for name in SESSIONS}),
    ]
    env = shell_env(tmp_path)
    before = files_under(Path(env["STUI_HOME"]))
    check(cases, fish_results(cases, workdir, env))
    check_stui_calls(env, before)


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_no_session_names_when_there_are_none(tmp_path: Path, workdir: Path, shell: str) -> None:
    """`stui session list --names` prints an empty line then: it must not become a match."""
    cases = [("stui --session ", set()), ("stui session show ", set()), ("stui session delete --yes ", set())]
    env = shell_env(tmp_path, sessions=set())
    if shell == "bash":
        results = bash_results(cases, workdir, env)
    elif shell == "zsh":
        results = zsh_results(cases, workdir, env, tmp_path / "zsh")
    else:
        results = fish_results(cases, workdir, env)
    check(cases, results)
