"""The README's commands run as written. Every ```sh block that needs no live stack runs in a
fresh checkout-like folder (the shipped config, a new state folder, this .venv); blocks
fenced ```sh live need `make run` (the end-to-end tests place the same calls). Every
`.venv/bin/madoguchi <command>` named in the text is a command the CLI has."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FENCE = re.compile(r"^```(?P<info>[^\n]*)\n(?P<body>.*?)^```$", re.M | re.S)
INLINE = re.compile(r"`\.venv/bin/madoguchi ((?:[a-z][a-z-]*)(?: [a-z][a-z-]*)?)")
PASSWORD = "readme password 1234"


def _blocks(info: str) -> list[str]:
    return [m["body"] for m in FENCE.finditer(README.read_text(encoding="utf-8"))
            if m["info"].strip() == info]


def test_the_readme_has_runnable_and_live_blocks() -> None:
    assert len(_blocks("sh")) >= 2
    assert len(_blocks("sh live")) >= 3
    fences = {m["info"].strip() for m in FENCE.finditer(README.read_text(encoding="utf-8"))}
    assert fences <= {"", "sh", "sh live", "yaml"}, fences


@pytest.mark.parametrize("block", _blocks("sh"), ids=lambda b: b.split()[1][:20])
def test_a_readme_block_runs_as_written(block: str, tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    shutil.copytree(ROOT / "config", checkout / "config")
    (checkout / ".venv").symlink_to(Path(sys.prefix))
    env = {**os.environ, "PW": PASSWORD}
    for name in [k for k in env if k.startswith("MADOGUCHI_")]:
        del env[name]
    # a new session has no terminal: the password prompt reads the lines given on stdin
    done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", block], cwd=checkout, env=env,
                          input=f"{PASSWORD}\n{PASSWORD}\n", capture_output=True, text=True,
                          timeout=300, start_new_session=True, check=False)
    assert done.returncode == 0, (block, done.stdout[-2000:], done.stderr[-3000:])


def _commands() -> list[str]:
    text = README.read_text(encoding="utf-8")
    return sorted({m[1] for m in INLINE.finditer(text)})


@pytest.mark.parametrize("words", _commands())
def test_a_command_named_in_the_readme_exists(words: str) -> None:
    parts = words.split()
    done = subprocess.run([str(Path(sys.prefix) / "bin" / "madoguchi"), *parts, "--help"],
                          capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0 and len(parts) == 2:  # the second word is an argument
        done = subprocess.run([str(Path(sys.prefix) / "bin" / "madoguchi"), parts[0],
                               "--help"], capture_output=True, text=True, timeout=60,
                              check=False)
    assert done.returncode == 0, (words, done.stderr[-1000:])


def test_the_readme_names_the_debian_packages_the_makefile_installs() -> None:
    make = (ROOT / "Makefile").read_text(encoding="utf-8")
    listed = re.search(r"^DEB_PACKAGES := (.*?)\n\n", make, re.M | re.S)
    assert listed is not None
    packages = listed[1].replace("\\", " ").split()
    readme = README.read_text(encoding="utf-8")
    said = readme[readme.index("installs the Debian packages it lacks"):][:600]
    assert re.findall(r"`([a-z0-9.+-]+)`", said)[:len(packages)] == packages
