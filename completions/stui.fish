# fish completion for stui.
#
# Install: copy to ~/.config/fish/completions/stui.fish.
# The option lists below are checked against stui_repl/cli.py by
# tests/test_cli_docs.py.

# True if the first argument is a subcommand (the one given, if any), as in
# cli.main(), where a subcommand counts only as the first argument.
function __stui_subcommand
    set -l tokens (commandline -opc)
    set -q tokens[2]; or return 1
    if set -q argv[1]
        test "$tokens[2]" = "$argv[1]"
    else
        contains -- $tokens[2] serve setup session key config
    end
end

function __stui_main
    not __stui_subcommand
end

function __stui_first_argument
    test (count (commandline -opc)) -eq 1
end

# Session names, from the stui being completed: `stui session list --names`
# only reads the sessions directory (no image is started).
function __stui_sessions
    set -l stui (string replace -r '^~/' "$HOME/" -- (commandline -opc)[1])
    command $stui session list --names 2>/dev/null | string match -rv '^$'
end

# In `stui session ...` or `stui key ...`: how many arguments the subcommand
# has so far, then the subcommand (the first word after the group that is not
# an option; none yet if empty).
function __stui_group_state
    set -l subcommand
    set -l arguments 0
    set -l previous
    for word in (commandline -opc)[3..-1]
        if string match -q -- '-*' $word
            # an option
        else if test -z "$subcommand"
            set subcommand $word
        else if test "$previous" != --as
            set arguments (math $arguments + 1)
        end
        set previous $word
    end
    if test "$previous" = --as
        set arguments -1 # the word being completed is the value of --as
    end
    echo $arguments
    echo $subcommand
end

# __stui_group_needs_command GROUP: no subcommand given yet.
function __stui_group_needs_command
    __stui_subcommand $argv[1]; or return 1
    set -l state (__stui_group_state)
    test -z "$state[2]"
end

# __stui_group_using GROUP SUBCOMMAND...: one of those subcommands was given.
function __stui_group_using
    __stui_subcommand $argv[1]; or return 1
    set -l state (__stui_group_state)
    contains -- "$state[2]" $argv[2..-1]
end

# __stui_group_argument N GROUP SUBCOMMAND...: the word being completed is
# the Nth argument of one of those subcommands.
function __stui_group_argument
    __stui_subcommand $argv[2]; or return 1
    set -l state (__stui_group_state)
    test "$state[1]" -eq (math $argv[1] - 1); and contains -- "$state[2]" $argv[3..-1]
end

# In `stui config`: neither --example nor --path yet (they exclude each other).
function __stui_config_needs_form
    __stui_subcommand config; or return 1
    set -l tokens (commandline -opc)
    not contains -- --example $tokens; and not contains -- --path $tokens
end

complete -c stui -f

# stui
complete -c stui -n __stui_first_argument -a serve -d 'Run just the server, for stui --connect'
complete -c stui -n __stui_first_argument -a setup -d 'Install GNU Smalltalk and build the server image'
complete -c stui -n __stui_first_argument -a session -d 'Manage saved sessions'
complete -c stui -n __stui_first_argument -a key -d 'Manage the key that encrypts session secrets'
complete -c stui -n __stui_first_argument -a config -d 'Show the settings, or print a documented configuration file'
complete -c stui -n __stui_main -s h -l help -d 'Show help and exit'
complete -c stui -n __stui_main -l version -d 'Show the version and exit'
complete -c stui -n __stui_main -s c -x -d "Evaluate CODE, printing each statement's value"
complete -c stui -n __stui_main -s f -r -F -d 'Run FILE, printing only its own output'
complete -c stui -n __stui_main -s q -l quiet -d "Print only the program's output"
complete -c stui -n __stui_main -s p -l print -d "Print each statement's value"
complete -c stui -n __stui_main -l format -x -a 'text json' -d 'Output of scripted modes'
complete -c stui -n __stui_main -l keep-going -d 'In scripts, carry on after a Smalltalk error'
complete -c stui -n __stui_main -l connect -x -d 'Use an image running the stui server (HOST:PORT)'
complete -c stui -n __stui_main -l token-file -r -F -d 'Read the server token from FILE, mode 0600'
complete -c stui -n __stui_main -l embedded -d 'Use a fresh embedded image, not the one the session remembers'
complete -c stui -n __stui_main -l session -x -a '(__stui_sessions)' -d 'Use session NAME'
complete -c stui -n __stui_main -l vi -d 'Vi key bindings at the prompt'
complete -c stui -n __stui_main -l no-color -d 'No colours'
complete -c stui -n __stui_main -l debug -d 'Show tracebacks for internal errors, and the wire traffic'

# stui serve
complete -c stui -n '__stui_subcommand serve' -s h -l help -d 'Show help and exit'
complete -c stui -n '__stui_subcommand serve' -l host -x -d 'Address to listen on (default 127.0.0.1; others are reachable from the network)'
complete -c stui -n '__stui_subcommand serve' -l port -x -d 'Port to listen on (default: any free port)'
complete -c stui -n '__stui_subcommand serve' -l token-file -r -F -d 'Token file to use or create, mode 0600'
complete -c stui -n '__stui_subcommand serve' -l lease -x -d 'Seconds to keep the workspace of a disconnected client'
complete -c stui -n '__stui_subcommand serve' -l debug -d 'Show tracebacks for internal errors'

# stui setup
complete -c stui -n '__stui_subcommand setup' -s h -l help -d 'Show help and exit'
complete -c stui -n '__stui_subcommand setup' -l debug -d 'Show tracebacks for internal errors'

# stui config
complete -c stui -n '__stui_subcommand config' -s h -l help -d 'Show help and exit'
complete -c stui -n __stui_config_needs_form -l example -d 'Print a configuration file with every setting documented'
complete -c stui -n __stui_config_needs_form -l path -d 'Print where the configuration file is'
complete -c stui -n '__stui_subcommand config' -l debug -d 'Show tracebacks for internal errors'

# stui session
complete -c stui -n '__stui_subcommand session' -s h -l help -d 'Show help and exit'
complete -c stui -n '__stui_subcommand session' -l debug -d 'Show tracebacks for internal errors'
complete -c stui -n '__stui_group_needs_command session' -a list -d 'List the sessions'
complete -c stui -n '__stui_group_needs_command session' -a show -d 'Describe a session: image, connection, variables, history'
complete -c stui -n '__stui_group_needs_command session' -a delete -d 'Delete a session and its backup'
complete -c stui -n '__stui_group_needs_command session' -a rename -d 'Rename a session'
complete -c stui -n '__stui_group_needs_command session' -a export -d "Write a session's file to stdout"
complete -c stui -n '__stui_group_needs_command session' -a import -d 'Add a session from a file'
complete -c stui -n '__stui_group_using session list' -l names -d 'Only the names, one per line'
complete -c stui -n '__stui_group_using session delete' -l yes -d 'Do not ask'
complete -c stui -n '__stui_group_using session import' -l as -x -d 'The name to give it'
complete -c stui -n '__stui_group_using session import' -l yes -d 'Do not ask before taking a session that holds code'
complete -c stui -n '__stui_group_argument 1 session show delete rename export' -a '(__stui_sessions)' -d Session
complete -c stui -n '__stui_group_argument 1 session import' -F

# stui key
complete -c stui -n '__stui_subcommand key' -s h -l help -d 'Show help and exit'
complete -c stui -n '__stui_subcommand key' -l debug -d 'Show tracebacks for internal errors'
complete -c stui -n '__stui_group_needs_command key' -a rotate -d "New key; re-encrypt every session's secrets"
