# bash completion for stui                                   -*- shell-script -*-
#
# Install: copy to ~/.local/share/bash-completion/completions/stui (loaded on
# demand by bash-completion), or `source` it from ~/.bashrc.
# The option lists below are checked against stui_repl/cli.py by
# tests/test_cli_docs.py.

_stui_files() {
    if declare -F _filedir >/dev/null; then
        _filedir
    else
        compopt -o filenames 2>/dev/null
        mapfile -t COMPREPLY < <(compgen -f -- "$1")
    fi
}

_stui() {
    local cur=${COMP_WORDS[COMP_CWORD]}
    local prev=${COMP_WORDS[COMP_CWORD - 1]}
    local cmd=stui opts
    COMPREPLY=()

    # `--format=json`: bash splits the word at `=` (see COMP_WORDBREAKS).
    if [[ $cur == = ]]; then
        cur=
    elif [[ $prev == = ]]; then
        prev=${COMP_WORDS[COMP_CWORD - 2]}
    fi

    # A subcommand counts only as the first argument, as in cli.main().
    if ((COMP_CWORD > 1)); then
        case ${COMP_WORDS[1]} in
            serve | setup) cmd=${COMP_WORDS[1]} ;;
        esac
    fi

    case $cmd in
        stui)
            case $prev in
                -f | --token-file)
                    _stui_files "$cur"
                    return
                    ;;
                --format)
                    mapfile -t COMPREPLY < <(compgen -W 'text json' -- "$cur")
                    return
                    ;;
                -c | --connect)
                    # CODE, HOST:PORT: nothing to offer.
                    return
                    ;;
            esac
            if ((COMP_CWORD == 1)) && [[ $cur != -* ]]; then
                # SESSIONS: session names go here once stui has sessions.
                mapfile -t COMPREPLY < <(compgen -W 'serve setup' -- "$cur")
                return
            fi
            opts='-h --help --version -c -f -q --quiet -p --print --format --keep-going --connect --token-file --debug'
            ;;
        serve)
            case $prev in
                --token-file)
                    _stui_files "$cur"
                    return
                    ;;
                --host | --port)
                    return
                    ;;
            esac
            opts='-h --help --host --port --token-file --debug'
            ;;
        setup)
            opts='-h --help --debug'
            ;;
    esac
    mapfile -t COMPREPLY < <(compgen -W "$opts" -- "$cur")
}

complete -F _stui stui
