"""Quiet by default: the README's main command prints edgerec's own lines only; third-party warnings, log records
and native writes to stderr appear with -v/--verbose."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

from .conftest import REPO

# every line edgerec itself prints on the way through `edgerec export --profile`
OWN_LINES = [
    r"\s*profile \S+ on \S+\s*",  # the table's title
    r"[┏┃┡│└].*[┓┃┩│┘]",  # the table
    r"wrote \S+/ \(.*\)",
    r"loading \S+",
    r"\S+: \d+ users, \d+ items, \d+ train interactions, \d+ test users",
    r"(train|compress|export): .+",
    r"epoch \d+ +loss [\d.]+ +val HR@10 [\d.]+ +NDCG@10 [\d.]+ +[\d.]+s +\d+ samples/s",
    r"exported \S+ \S+ in [\d.]+ s; verifying in \S+",
]


def readme_main_command() -> list[str]:
    """The command the README's first line runs after installing."""
    first = (REPO / "README.md").read_text().split("```bash\n", 1)[1].splitlines()[0]
    return first.rsplit("&& ", 1)[1].split()


def test_the_readme_main_command_prints_only_edgerec_lines(tmp_path) -> None:
    cmd = readme_main_command()
    assert cmd[:3] == ["edgerec", "export", "--profile"]
    env = {**os.environ, "EDGEREC_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-m", "edgerec.entry", *cmd[1:]], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    foreign = [line for line in lines if not any(re.fullmatch(p, line) for p in OWN_LINES)]
    assert foreign == []
    assert any(line.startswith("epoch 1 ") for line in lines) and "passed" in proc.stdout


PROBE = textwrap.dedent(
    """
    import logging, os, sys, warnings
    from edgerec.cli.output import command_output
    with command_output(verbose={verbose}, quiet=False):
        os.write(2, b"native line from C++\\n")
        warnings.warn("a third-party deprecation")
        logging.getLogger("absl").warning("an absl warning")
        print("a python print to stderr", file=sys.stderr)
        logging.getLogger("edgerec").info("edgerec progress")
    os.write(2, b"after the command\\n")
    """
)


def probe(verbose: bool) -> str:
    proc = subprocess.run([sys.executable, "-c", PROBE.format(verbose=verbose)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stderr


def test_third_party_output_is_hidden_by_default_and_shown_with_verbose() -> None:
    assert probe(verbose=False).splitlines() == ["edgerec progress", "after the command"]
    shown = probe(verbose=True)
    for text in ("native line from C++", "a third-party deprecation", "an absl warning", "a python print to stderr"):
        assert text in shown
    assert "edgerec progress" in shown
