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

# Session names, from the stui being completed: `stui session list --names`
# only reads the sessions directory (no image is started).
_stui_sessions() {
    local stui=${COMP_WORDS[0]} names
    [[ $stui == '~/'* ]] && stui=$HOME/${stui#'~/'}
    names=$("$stui" session list --names 2>/dev/null) || return
    mapfile -t COMPREPLY < <(compgen -W "$names" -- "$1")
}

# `stui session ...` and `stui key ...`: the subcommand is the first word
# after the group that is not an option; then come its own arguments.
_stui_group() {
    local group=$1 cur=$2 prev=$3 sub= word i args=0
    local opts='-h --help --debug'
    for ((i = 2; i < COMP_CWORD; i++)); do
        word=${COMP_WORDS[i]}
        if [[ $word == -* || $word == = || ${COMP_WORDS[i - 1]} == = ]]; then
            continue # an option, or the value in `--as=NAME`
        elif [[ -z $sub ]]; then
            sub=$word
        elif [[ ${COMP_WORDS[i - 1]} != --as ]]; then
            ((args++))
        fi
    done

    case $group/$sub in
        session/)
            if [[ $cur != -* ]]; then
                mapfile -t COMPREPLY < <(compgen -W 'list show delete rename export import' -- "$cur")
                return
            fi
            ;;
        key/)
            if [[ $cur != -* ]]; then
                mapfile -t COMPREPLY < <(compgen -W 'rotate' -- "$cur")
                return
            fi
            ;;
        session/list)
            opts+=' --names'
            ;;
        session/show | session/export | session/delete)
            [[ $sub == delete ]] && opts+=' --yes'
            if [[ $cur != -* ]] && ((args == 0)); then
                _stui_sessions "$cur"
                return
            fi
            ;;
        session/rename)
            if [[ $cur != -* ]]; then
                # OLD is a session; NEW is a name not taken yet.
                ((args == 0)) && _stui_sessions "$cur"
                return
            fi
            ;;
        session/import)
            opts+=' --as --yes'
            [[ $prev == --as ]] && return # a new name
            if [[ $cur != -* ]] && ((args == 0)); then
                _stui_files "$cur"
                return
            fi
            ;;
    esac
    mapfile -t COMPREPLY < <(compgen -W "$opts" -- "$cur")
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
            serve | setup | session | key | config) cmd=${COMP_WORDS[1]} ;;
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
                --session)
                    _stui_sessions "$cur"
                    return
                    ;;
                -c | --connect)
                    # CODE, HOST:PORT: nothing to offer.
                    return
                    ;;
            esac
            if ((COMP_CWORD == 1)) && [[ $cur != -* ]]; then
                mapfile -t COMPREPLY < <(compgen -W 'serve setup session key config' -- "$cur")
                return
            fi
            opts='-h --help --version -c -f -q --quiet -p --print --format --keep-going --connect --token-file
                --embedded --session --vi --no-color --debug'
            ;;
        serve)
            case $prev in
                --token-file)
                    _stui_files "$cur"
                    return
                    ;;
                --host | --port | --lease)
                    return
                    ;;
            esac
            opts='-h --help --host --port --token-file --lease --debug'
            ;;
        setup)
            opts='-h --help --debug'
            ;;
        config)
            # --example and --path exclude each other.
            opts='-h --help --example --path --debug'
            local word
            for word in "${COMP_WORDS[@]:2:COMP_CWORD-2}"; do
                [[ $word == --example || $word == --path ]] && opts='-h --help --debug'
            done
            ;;
        session | key)
            _stui_group "$cmd" "$cur" "$prev"
            return
            ;;
    esac
    mapfile -t COMPREPLY < <(compgen -W "$opts" -- "$cur")
}

complete -F _stui stui
