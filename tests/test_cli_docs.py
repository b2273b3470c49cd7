"""The man page and the shell completions, kept in step with the code.

One source of truth: the options come from the argparse parsers of
stui_repl/cli.py, the meta-commands from stui_repl.meta.REGISTRY. Each must
appear in `stui --help`, in man/stui.1 and in every completion script, and
nothing else may: an option named there must exist in a parser. The man page
must lint clean under groff and mandoc, and the completion scripts are loaded
into real bash, zsh and fish to check what they complete.

Tools that are missing are skipped with the reason; on Debian:
`apt-get install groff mandoc bash-completion zsh fish`.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from stui_repl import __version__, cli, errors
from stui_repl.meta import REGISTRY

ROOT = Path(__file__).resolve().parents[1]
MAN_PAGE = ROOT / "man" / "stui.1"
COMPLETIONS = ROOT / "completions"
BASH_SCRIPT = COMPLETIONS / "stui.bash"
ZSH_SCRIPT = COMPLETIONS / "_stui"
FISH_SCRIPT = COMPLETIONS / "stui.fish"
BASH_COMPLETION = Path("/usr/share/bash-completion/bash_completion")

PARSERS: dict[str, Callable[[], argparse.ArgumentParser]] = {
    "stui": cli.build_parser,
    "serve": cli.build_serve_parser,
    "setup": cli.build_setup_parser,
}
# Options of other programs that the man page shows (`ssh -N -L` in EXAMPLES).
FOREIGN_OPTIONS = {"-L", "-N"}
# Options of a command line, in prose or code: `-c`, `--token-file`.
OPTION = re.compile(r"(?<![\w/-])(--?[A-Za-z][\w-]*)")
LONG_OPTION = re.compile(r"(?<![\w/-])(--[A-Za-z][\w-]*)")


def options_of(command: str) -> set[str]:
    return {name for action in PARSERS[command]()._actions for name in action.option_strings}


ALL_OPTIONS = set().union(*(options_of(command) for command in PARSERS))


def format_choices() -> list[str]:
    (action,) = [a for a in cli.build_parser()._actions if "--format" in a.option_strings]
    return list(action.choices)


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (apt-get install {tool})")
    return path


def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False, **kwargs)


# --------------------------------------------------------------------------
# stui --help


@pytest.mark.parametrize("command", PARSERS)
def test_help_names_every_option_and_only_real_ones(command: str) -> None:
    argv = [sys.executable, "-m", "stui_repl", *([] if command == "stui" else [command]), "--help"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "100"}
    done = run(argv, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr
    named = set(OPTION.findall(done.stdout))
    assert options_of(command) <= named, f"missing from `{' '.join(argv[3:])}`"
    assert named <= ALL_OPTIONS, "the help text names options that do not exist"


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


def tagged_paragraphs(lines: list[str]) -> list[tuple[str, str]]:
    """(tag, body) of each .TP paragraph, both as plain text."""
    entries: list[tuple[str, list[str]]] = []
    current: list[str] | None = None
    lines = iter(lines)
    for line in lines:
        if line == ".TP":
            current = []
            entries.append((next(lines, ""), current))
        elif line.startswith((".PP", ".SS", ".SH")):
            current = None
        elif current is not None:
            current.append(line)

    def words(line: str) -> str:
        line = re.sub(r"^\.[A-Z]{1,2}\b ?", "", line)
        return " ".join(roff_text(line).replace('"', " ").split())

    return [(words(tag), " ".join(words(line) for line in body)) for tag, body in entries]


def option_subsections() -> dict[str, list[str]]:
    """OPTIONS has one .SS per parser: "stui", "stui serve", "stui setup"."""
    result: dict[str, list[str]] = {}
    current = None
    for line in man_sections()["OPTIONS"]:
        if line.startswith(".SS "):
            current = line[4:].strip('"').removeprefix("stui").strip() or "stui"
            result[current] = []
        elif current is not None:
            result[current].append(line)
    return result


def test_man_page_has_the_sections() -> None:
    expected = [
        "NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "META-COMMANDS", "ENVIRONMENT",
        "FILES", "EXIT STATUS", "SECURITY", "EXAMPLES", "SEE ALSO",
    ]
    assert list(man_sections()) == expected
    (title,) = [line for line in MAN_PAGE.read_text().splitlines() if line.startswith(".TH ")]
    assert f'"stui {__version__}"' in title, ".TH names another version"
    assert "gst (1)" in roff_text(" ".join(man_sections()["SEE ALSO"]))


@pytest.mark.parametrize("command", PARSERS)
def test_man_page_documents_exactly_the_options(command: str) -> None:
    subsections = option_subsections()
    assert set(subsections) == set(PARSERS), "OPTIONS needs one .SS per parser"
    tags = [tag for tag, _ in tagged_paragraphs(subsections[command])]
    documented = {name for tag in tags for name in OPTION.findall(tag)}
    assert documented == options_of(command)


def test_man_page_names_no_other_options() -> None:
    text = roff_text(MAN_PAGE.read_text())
    assert set(OPTION.findall(text)) - FOREIGN_OPTIONS <= ALL_OPTIONS
    synopsis = set(OPTION.findall(roff_text("\n".join(man_sections()["SYNOPSIS"]))))
    assert synopsis <= ALL_OPTIONS
    for command, build in PARSERS.items():  # each option, in one of its spellings
        for action in build()._actions:
            assert synopsis & set(action.option_strings), f"SYNOPSIS lacks {action.option_strings} ({command})"


def test_man_page_documents_exactly_the_meta_commands() -> None:
    entries = tagged_paragraphs(man_sections()["META-COMMANDS"])
    named = {m for tag, body in entries for m in re.findall(r"(?<![\w:]):([a-z][\w-]*)", f"{tag} {body}")}
    assert named == set(REGISTRY.names())  # every name and alias, and no others
    by_name = {tag.split()[0].removeprefix(":"): (tag, body) for tag, body in entries}
    for entry in REGISTRY.commands():
        tag, body = by_name[entry.name]
        assert tag == f":{entry.name} {entry.syntax}".strip(), f"syntax of :{entry.name}"
        assert entry.help.lower() in body.lower(), f"help of :{entry.name}"
        for alias in entry.aliases:
            assert f":{alias}" in body


def test_man_page_documents_environment_and_exit_statuses() -> None:
    sources = "\n".join(p.read_text() for p in (ROOT / "stui_repl").glob("*.py"))
    used = set(re.findall(r"""["']((?:STUI|XDG)_[A-Z_]+)["']""", sources))
    assert {"STUI_HOME", "STUI_GST", "STUI_TOKEN", "XDG_CACHE_HOME"} <= used
    environment = {tag for tag, _ in tagged_paragraphs(man_sections()["ENVIRONMENT"])}
    assert environment == used | {"NO_COLOR"}  # NO_COLOR: honoured by rich and prompt_toolkit

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


def completion_cases() -> list[tuple[str, set[str]]]:
    return [
        ("stui -", options_of("stui")),
        ("stui serve -", options_of("serve")),
        ("stui setup -", options_of("setup")),
        ("stui --fo", {"--format"}),
        ("stui --format ", set(format_choices())),
        ("stui --format j", {"json"}),
        ("stui se", {"serve", "setup"}),
        ("stui serve --", {o for o in options_of("serve") if o.startswith("--")}),
        ("stui -q se", set()),  # a subcommand is only ever the first argument
        ("stui -f he", {"hello.st"}),
        ("stui --token-file se", {"secret.token"}),
        ("stui serve --token-file se", {"secret.token"}),
        ("stui -c ", set()),
        ("stui --connect ", set()),
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


def shell_env(tmp_path: Path) -> dict[str, str]:
    """A clean environment that keeps the shells out of the real $HOME."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "TERM": "dumb", "LANG": "C.UTF-8",
        "XDG_CONFIG_HOME": str(home / ".config"), "XDG_DATA_HOME": str(home / ".local/share"),
        "XDG_CACHE_HOME": str(home / ".cache"), "XDG_RUNTIME_DIR": str(home),
    }


def split_results(stdout: str, count: int) -> list[set[str]]:
    """Output of `@@ <case>` blocks, one match per line."""
    blocks = stdout.split("@@\n")[1:]
    assert len(blocks) == count, stdout
    return [{line for line in block.splitlines() if line} for block in blocks]


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
    printf '%s\n' "${COMPREPLY[@]}"
}
"""


@pytest.mark.parametrize("with_bash_completion", [False, True], ids=["plain", "bash-completion"])
def test_bash_completes(tmp_path: Path, workdir: Path, with_bash_completion: bool) -> None:
    bash = need("bash")
    if with_bash_completion and not BASH_COMPLETION.exists():
        pytest.skip(f"{BASH_COMPLETION} missing (apt-get install bash-completion)")
    cases = completion_cases() + [
        ("stui --format=", set(format_choices())),  # bash splits at `=`
        ("stui --format=j", {"json"}),
        ("stui --token-file=se", {"secret.token"}),
    ]
    lines = [f". {BASH_COMPLETION}"] if with_bash_completion else []
    lines += [f". {BASH_SCRIPT}", BASH_HARNESS]
    for line, _ in cases:
        words = line.replace("=", " = ").split(" ")  # COMP_WORDBREAKS splits at `=` too
        if words[-2:] == ["=", ""]:
            words.pop()  # the cursor is right after `=`: that is the current word
        lines.append("__complete " + " ".join(f"'{w}'" for w in words))
    done = run([bash, "--norc", "--noprofile", "-c", "\n".join(lines)], cwd=workdir, env=shell_env(tmp_path))
    assert done.returncode == 0, done.stderr
    check(cases, split_results(done.stdout, len(cases)))


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
    print -rl -- $__found >> $__CAPTURE
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


def test_zsh_completes(tmp_path: Path, workdir: Path) -> None:
    zsh = need("zsh")
    cases = completion_cases() + [("stui --format=j", {"json"})]
    harness = tmp_path / "zsh"
    harness.mkdir()
    (harness / "setup.zsh").write_text(ZSH_SETUP.format(completions=COMPLETIONS))
    (harness / "driver.zsh").write_text(ZSH_DRIVER)
    done = run([zsh, "-f", str(harness / "driver.zsh"), *(line for line, _ in cases)],
               cwd=workdir, env=shell_env(tmp_path))
    if done.returncode == 3:
        pytest.skip("zsh has no zsh/zpty module")
    assert done.returncode == 0, done.stderr
    check(cases, split_results(done.stdout, len(cases)))


def test_fish_completes(tmp_path: Path, workdir: Path) -> None:
    fish = need("fish")
    cases = completion_cases() + [("stui --format=", {f"--format={c}" for c in format_choices()})]
    script = [f"source {FISH_SCRIPT}"]
    for line, _ in cases:
        quoted = line.replace("\\", "\\\\").replace("'", "\\'")
        script.append(f"echo @@; complete -C '{quoted}' | string replace -r '\\t.*' ''")
    done = run([fish, "--no-config", "-c", "\n".join(script)], cwd=workdir, env=shell_env(tmp_path))
    assert done.returncode == 0, done.stderr
    check(cases, split_results(done.stdout, len(cases)))
