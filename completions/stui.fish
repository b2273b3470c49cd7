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
        contains -- $tokens[2] serve setup
    end
end

function __stui_main
    not __stui_subcommand
end

function __stui_first_argument
    test (count (commandline -opc)) -eq 1
end

complete -c stui -f

# stui
# SESSIONS: session names go here once stui has sessions.
complete -c stui -n __stui_first_argument -a serve -d 'Run just the server, for stui --connect'
complete -c stui -n __stui_first_argument -a setup -d 'Install GNU Smalltalk and build the server image'
complete -c stui -n __stui_main -s h -l help -d 'Show help and exit'
complete -c stui -n __stui_main -l version -d 'Show the version and exit'
complete -c stui -n __stui_main -s c -x -d "Evaluate CODE, printing each statement's value"
complete -c stui -n __stui_main -s f -r -F -d 'Run FILE, printing only its own output'
complete -c stui -n __stui_main -s q -l quiet -d "Print only the program's output"
complete -c stui -n __stui_main -s p -l print -d "Print each statement's value"
complete -c stui -n __stui_main -l format -x -a 'text json' -d 'Output of scripted modes'
complete -c stui -n __stui_main -l keep-going -d 'In scripts, carry on after a Smalltalk error'
complete -c stui -n __stui_main -l connect -x -d 'Use an image running the stui server (HOST:PORT)'
complete -c stui -n __stui_main -l token-file -r -F -d 'Read the server token from FILE'
complete -c stui -n __stui_main -l debug -d 'Show tracebacks for internal errors'

# stui serve
complete -c stui -n '__stui_subcommand serve' -s h -l help -d 'Show help and exit'
complete -c stui -n '__stui_subcommand serve' -l host -x -d 'Address to listen on (default 127.0.0.1)'
complete -c stui -n '__stui_subcommand serve' -l port -x -d 'Port to listen on (default: any free port)'
complete -c stui -n '__stui_subcommand serve' -l token-file -r -F -d 'Token file to use or create'
complete -c stui -n '__stui_subcommand serve' -l debug -d 'Show tracebacks for internal errors'

# stui setup
complete -c stui -n '__stui_subcommand setup' -s h -l help -d 'Show help and exit'
complete -c stui -n '__stui_subcommand setup' -l debug -d 'Show tracebacks for internal errors'
