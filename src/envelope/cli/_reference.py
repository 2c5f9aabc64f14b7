"""docs/cli.md, generated from the parser: every command, flag and ``ENVELOPE_*`` variable.

``python -m envelope.cli._reference > docs/cli.md`` rewrites it; a test compares the page
with this output, so the page cannot drift from the parser.
"""

from __future__ import annotations

import argparse
import re

from envelope._exitcodes import ExitCode
from envelope.cli._envdefaults import NO_VARIABLE, env_names
from envelope.cli._tree import Command, commands, flag_actions

__all__ = ["markdown"]

_INTRO = """\
# Command line

<!-- Generated from the parser by `python -m envelope.cli._reference > docs/cli.md`;
     tests/unit/test_cli_reference.py fails when it is out of date. Do not edit. -->

Every flag can also be given by an environment variable, listed next to it (and in
`--help` as `[env: ...]`): a flag on the command line wins over its variable, which wins
over the default. Where several variables are listed, the first one set wins. Switches take
`1/true/yes/on` or `0/false/no/off`; a repeatable flag takes a comma-separated list.
Flags without a variable, on purpose: {no_variable}.
The settings flags (`--kms`, `--kms-key`, `--cluster-secret`, ...) are read by
`envelope.settings` (see its table); two keep older names: `--cluster-secret` is
`ENVELOPE_CLUSTER_SECRET_FILE` (`ENVELOPE_CLUSTER_SECRET` holds the part itself) and
`--passphrase-file` is `ENVELOPE_KEYRING_PASSPHRASE_FILE`.

`-q/--quiet` is global: it may come before or after the subcommand. A mistyped
subcommand, flag or choice is answered with the closest ones ("did you mean").

Terminals, as `age` does: `envelope encrypt` refuses to write its binary output to a
terminal unless `-o -` is given explicitly (pass `-o FILE` or redirect stdout).
`envelope decrypt` writes the plaintext to a terminal (it is your data, often text, as
`age -d` and `sops -d` do). A command that would read stdin because no file was given
(`inspect`, `encrypt`, `decrypt`, ...) stops with a hint instead of waiting when stdin is a
terminal; `-` typed on purpose still reads the terminal.

Shell completion, generated from this same parser:

```sh
source <(envelope completion bash)                # bash (~/.bashrc)
envelope completion zsh > "${{fpath[1]}}/_envelope"  # zsh
envelope completion fish > ~/.config/fish/completions/envelope.fish
```

## Exit codes

| code | meaning |
| ---: | --- |
{exit_codes}
"""


_ENV_NOTE = re.compile(r"\s*\[env: [^\]]*\]$")


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _flag_cell(action: argparse.Action) -> str:
    names = ", ".join(f"`{s}`" for s in action.option_strings)
    if action.nargs != 0:
        metavar = action.metavar or (
            "{" + ",".join(map(str, action.choices)) + "}"
            if action.choices
            else action.dest.upper()
        )
        names += f" `{_cell(str(metavar))}`"
    return names


def _section(command: Command) -> str:
    lines = [f"## {command.name}", "", _cell(command.parser.description or command.help), ""]
    positionals = [a for a in command.parser._actions if not a.option_strings]
    usage = command.parser.format_usage().removeprefix("usage: ").strip()
    lines += ["```text", " ".join(usage.split()), "```", ""]
    if positionals:
        lines += ["| argument | description |", "| --- | --- |"]
        for action in positionals:
            name = str(action.metavar or action.dest)
            lines.append(f"| `{_cell(name)}` | {_cell(action.help or '')} |")
        lines.append("")
    flags = flag_actions(command.parser)
    if flags:
        lines += ["| flag | environment | description |", "| --- | --- | --- |"]
        for action in flags:
            env = ", ".join(f"`{n}`" for n in env_names(action)) or "—"
            help_ = _ENV_NOTE.sub("", action.help or "")
            if help_ == argparse.SUPPRESS:
                help_ = ""
            lines.append(f"| {_flag_cell(action)} | {env} | {_cell(help_)} |")
        lines.append("")
    return "\n".join(lines)


def markdown(root: argparse.ArgumentParser) -> str:
    """The reference page for ``root`` (the ``envelope`` parser)."""
    codes = "\n".join(f"| {c.value} | {_cell(c.description)} |" for c in ExitCode)
    without = "; ".join(f"`{flag}`: {why}" for flag, why in sorted(NO_VARIABLE.items()))
    intro = _INTRO.format(no_variable=without, exit_codes=codes)
    sections = [_section(c) for c in commands(root) if c.path and c.is_leaf]
    return intro + "\n" + "\n".join(sections).rstrip() + "\n"


def _main() -> None:
    from envelope.cli._app import build_parser  # noqa: PLC0415 - the app imports this module's layer

    print(markdown(build_parser()), end="")


if __name__ == "__main__":
    _main()
