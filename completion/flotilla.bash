# bash completion for flotilla: the words come from `flotilla __complete`, which reads the
# program's own command table and the manifest, so completion and --help cannot disagree.
_flotilla() {
	local cur=${COMP_WORDS[COMP_CWORD]}
	local words
	words=$("${COMP_WORDS[0]}" __complete "${COMP_WORDS[@]:1:COMP_CWORD-1}" 2>/dev/null) || return 0
	# shellcheck disable=SC2207
	COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o default -F _flotilla flotilla
