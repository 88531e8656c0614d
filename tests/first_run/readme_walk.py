"""The README's first walk through the API, as a script: its shell blocks,
command by command, with a marker before each so every answer can be checked."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

WALK_HEADING = "## A first walk through the API"
STEP_MARK = "@@step"
HTTP_MARK = "@@http"
# The one thing a user types in from `make dev`'s output.
PASSWORD_PLACEHOLDER = "<printed password>"


@dataclass
class Step:
    index: int
    command: str
    stdout: str = ""
    stderr: str = ""
    # What curl itself said: its errors and each answer's status.
    curl_log: str = ""

    @property
    def statuses(self) -> list[int]:
        return [int(code) for code in re.findall(rf"^{HTTP_MARK} (\d+)", self.curl_log, re.M)]


def walk_section(readme: str) -> str:
    start = readme.index(WALK_HEADING)
    end = readme.find("\n## ", start + len(WALK_HEADING))
    return readme[start : end if end != -1 else len(readme)]


def shell_commands(section: str) -> list[str]:
    """Each command of each ```bash block: continuation lines joined, comments
    and blank lines dropped."""
    commands: list[str] = []
    for block in re.findall(r"```bash\n(.*?)```", section, re.S):
        pending = ""
        for line in block.splitlines():
            if not pending and (not line.strip() or line.lstrip().startswith("#")):
                continue
            pending += line + "\n"
            if not line.endswith("\\"):
                commands.append(pending.rstrip("\n"))
                pending = ""
        assert not pending, f"unterminated command in the README: {pending!r}"
    return commands


def script_of(commands: list[str], password: str, curl_log: Path) -> str:
    lines = ["set -euo pipefail"]
    for index, command in enumerate(commands):
        # On a line of its own even after an answer without a final newline.
        mark = f"printf '\\n{STEP_MARK} {index}\\n'"
        lines.append(f"{mark}; {mark} >&2; {mark} >> '{curl_log}'")
        lines.append(command.replace(PASSWORD_PLACEHOLDER, password))
    return "\n".join(lines) + "\n"


def split_output(commands: list[str], stdout: str, stderr: str, curl_log: str) -> list[Step]:
    steps = [Step(i, command) for i, command in enumerate(commands)]
    for text, attr in ((stdout, "stdout"), (stderr, "stderr"), (curl_log, "curl_log")):
        parts = re.split(rf"\n{STEP_MARK} (\d+)\n", "\n" + text)
        for number, body in zip(parts[1::2], parts[2::2], strict=True):
            setattr(steps[int(number)], attr, body)
    return steps


def curl_wrapper(real_curl: str, directory: Path, curl_log: Path) -> Path:
    """A ``curl`` that fails on HTTP errors and logs each status (and its own
    errors) to ``curl_log``, first on PATH, so the README's commands run
    unchanged and their answers stay as a user sees them."""
    directory.mkdir(parents=True, exist_ok=True)
    wrapper = directory / "curl"
    wrapper.write_text(
        "#!/usr/bin/env bash\n"
        f"exec {real_curl} --fail-with-body -w '%{{stderr}}{HTTP_MARK} %{{http_code}}\\n' "
        f"\"$@\" 2>> '{curl_log}'\n"
    )
    wrapper.chmod(0o755)
    return directory
