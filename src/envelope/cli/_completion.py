"""``envelope completion bash|zsh|fish``: shell completion generated from the parser.

Every command, subcommand, flag and flag choice comes from walking the parser, so what
any module registers is completed without a change here. zsh loads the bash function
through ``bashcompinit`` (part of zsh); fish gets native ``complete`` lines.
"""

from __future__ import annotations

import argparse
import shlex

from envelope.cli._tree import Command, commands, flag_actions, subcommands

__all__ = ["SHELLS", "script"]

SHELLS = ("bash", "zsh", "fish")
EMPTY = '""'


def _flags(command: Command) -> list[str]:
    return sorted({s for a in command.parser._actions for s in a.option_strings})


def _case(arms: dict[str, str]) -> str:
    """``case`` arms: pattern (quoted, so ``|`` and spaces are literal) -> words echoed."""
    return "\n".join(
        f"        {shlex.quote(key) if key else EMPTY}) echo {shlex.quote(words)} ;;"
        for key, words in arms.items()
    )


def _bash(root: argparse.ArgumentParser) -> str:
    subs: dict[str, str] = {}
    flags: dict[str, str] = {}
    choices: dict[str, str] = {}
    for command in commands(root):
        key = " ".join(command.path)
        names = " ".join(subcommands(command.parser))
        if names:
            subs[key] = names
        for action in command.parser._actions:  # a positional with choices: those words
            if not action.option_strings and action.choices and not names:
                subs[key] = " ".join(map(str, action.choices))
        flags[key] = " ".join(_flags(command))
        for action in flag_actions(command.parser):
            if action.choices:
                for option in action.option_strings:
                    choices[f"{key}|{option}"] = " ".join(map(str, action.choices))
    return f"""# envelope bash completion (generated from the parser: envelope completion bash)
_envelope_subcommands() {{
    case "$1" in
{_case(subs)}
    esac
}}
_envelope_flags() {{
    case "$1" in
{_case(flags)}
    esac
}}
_envelope_choices() {{
    case "$1" in
{_case(choices)}
    esac
}}
_envelope() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" prev="" path="" word i subs values
    (( COMP_CWORD > 0 )) && prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    for (( i = 1; i < COMP_CWORD; i++ )); do
        word="${{COMP_WORDS[i]}}"
        [[ $word == -* ]] && continue
        if [[ -n $(_envelope_flags "${{path:+$path }}$word") ]]; then  # a known command
            path="${{path:+$path }}$word"
        fi
    done
    values="$(_envelope_choices "$path|$prev")"
    if [[ -n $values ]]; then
        COMPREPLY=( $(compgen -W "$values" -- "$cur") )
    elif [[ $cur == -* ]]; then
        COMPREPLY=( $(compgen -W "$(_envelope_flags "$path")" -- "$cur") )
    else
        subs="$(_envelope_subcommands "$path")"
        if [[ -n $subs ]]; then
            COMPREPLY=( $(compgen -W "$subs" -- "$cur") )
        else
            COMPREPLY=( $(compgen -f -- "$cur") )
        fi
    fi
}}
complete -o filenames -F _envelope envelope
"""


def _zsh(root: argparse.ArgumentParser) -> str:
    return (
        "#compdef envelope\n# envelope zsh completion (generated: envelope completion zsh)\n"
        "autoload -U +X bashcompinit && bashcompinit\n" + _bash(root)
    )


def _fish_quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _fish(root: argparse.ArgumentParser) -> str:
    lines = [
        "# envelope fish completion (generated: envelope completion fish)",
        "complete -c envelope -f",
    ]
    for command in commands(root):
        words = command.path
        if not words:
            condition = "__fish_use_subcommand"
        else:
            below = " ".join(subcommands(command.parser))
            seen = "; and ".join(f"__fish_seen_subcommand_from {w}" for w in words)
            condition = seen + (f"; and not __fish_seen_subcommand_from {below}" if below else "")
        for name, (_sub, help_) in subcommands(command.parser).items():
            lines.append(
                f"complete -c envelope -n {_fish_quote(condition)} -a {_fish_quote(name)} "
                f"-d {_fish_quote(help_.split(';')[0][:80])}"
            )
        for action in flag_actions(command.parser):
            parts = [f"complete -c envelope -n {_fish_quote(condition)}"]
            for option in action.option_strings:
                parts.append(f"-l {option[2:]}" if option.startswith("--") else f"-s {option[1:]}")
            if action.nargs != 0 and action.choices:  # -x: one of these, not a file
                parts.append("-x -a " + _fish_quote(" ".join(map(str, action.choices))))
            elif action.nargs != 0:
                parts.append("-r -F")
            if action.help and action.help != argparse.SUPPRESS:
                parts.append("-d " + _fish_quote(action.help.split("[env:")[0].strip()[:80]))
            lines.append(" ".join(parts))
        if command.is_leaf and any(not a.option_strings for a in command.parser._actions):
            lines.append(f"complete -c envelope -n {_fish_quote(condition)} -F")
    return "\n".join(lines) + "\n"


def script(root: argparse.ArgumentParser, shell: str) -> str:
    """The completion script for ``shell`` (one of :data:`SHELLS`).

    Raises:
        ValueError: an unknown shell.
    """
    if shell == "bash":
        return _bash(root)
    if shell == "zsh":
        return _zsh(root)
    if shell == "fish":
        return _fish(root)
    raise ValueError(f"no completion for {shell!r}: use one of {', '.join(SHELLS)}")
