#!/usr/bin/env bash
# One command to set everything up on a fresh Debian or Ubuntu machine:
#   ./dev.sh repl [STUI ARGS...]   set up, then open the REPL on the embedded gst image
#   ./dev.sh test [PYTEST ARGS...] set up (with test tools), then run the whole test suite
# Python packages go into .venv here; GNU Smalltalk 3.2.5 goes into stui's cache
# (no root needed for either). Root, when we have it, also installs the shells and
# man-page linters the tests exercise, and python3-venv if it is missing.
set -euo pipefail
cd "$(dirname "$0")"

verb=${1:-}
[ $# -gt 0 ] && shift
case "$verb" in
  repl|test) ;;
  *) echo "usage: ./dev.sh repl [stui args] | ./dev.sh test [pytest args]" >&2; exit 2 ;;
esac

say() { echo "dev.sh: $*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo "$@"
  else return 1
  fi
}

apt_updated=""
apt_install() {
  command -v apt-get >/dev/null || return 1
  if [ -z "$apt_updated" ]; then
    as_root apt-get update -qq >/dev/null || return 1
    apt_updated=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

python=""
for candidate in python3.13 python3.12 python3.11 python3; do
  if command -v "$candidate" >/dev/null &&
     "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    python=$candidate; break
  fi
done
if [ -z "$python" ]; then
  say "stui needs Python 3.11 or newer; installing python3"
  apt_install python3 python3-venv || { say "please install Python >= 3.11"; exit 1; }
  python=python3
fi

if [ ! -x .venv/bin/python ]; then
  if ! "$python" -m venv .venv 2>/dev/null; then
    rm -rf .venv
    say "installing python3-venv"
    apt_install python3-venv || { say "please install python3-venv (apt install python3-venv)"; exit 1; }
    "$python" -m venv .venv
  fi
fi

extras=""
[ "$verb" = test ] && extras="[test]"
# The stamp names the install's kind: a venv made by an older dev.sh (with
# setuptools' default editable finder) is installed again.
stamp=".venv/.installed-compat$extras"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  say "installing Python packages into .venv"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  # compat mode: a plain path in a .pth file. The default editable finder
  # imports pathlib, re and urllib at every interpreter start (12 ms of
  # `stui -c`'s start-up, which a regular install does not pay). setuptools
  # calls the mode transitional; should it go, the default finder is used.
  .venv/bin/python -m pip install -q -e ".$extras" --config-settings editable_mode=compat 2>/dev/null ||
    .venv/bin/python -m pip install -q -e ".$extras"
  touch "$stamp"
fi
# An editable install leaves out data files: link the man page where a
# regular install puts it, so `man stui` finds it with .venv/bin on PATH.
mkdir -p .venv/share/man/man1
ln -sf "$PWD/man/stui.1" .venv/share/man/man1/stui.1

if [ "$verb" = test ]; then
  missing=""
  for tool in zsh fish groff mandoc; do command -v "$tool" >/dev/null || missing="$missing $tool"; done
  [ -f /usr/share/bash-completion/bash_completion ] || missing="$missing bash-completion"
  if [ -n "$missing" ]; then
    say "installing test tools:$missing"
    apt_install zsh fish groff-base mandoc bash-completion ||
      say "could not install$missing; the tests that need them will be skipped"
  fi
fi

# GNU Smalltalk (provisioned into the cache if there is none) and the server image.
.venv/bin/stui setup >&2

if [ "$verb" = repl ]; then
  exec .venv/bin/stui "$@"
fi
exec .venv/bin/python -m pytest "$@"
