"""Enable Debian's `contrib` component from the mirror this machine already uses.

Open JTalk's voice (`hts-voice-nitech-jp-atr503-m001`) lives in `contrib`, which minimal
images leave out. The mirror is read from the machine's own apt sources at run time, so no
host name is written anywhere in the project. Standard library only: `make deps` runs it with
the system Python before the virtualenv exists.

    python3 ivr/apt_contrib.py            # writes the .sources file if contrib is missing
    python3 ivr/apt_contrib.py --dry-run  # prints what it would write
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

TARGET = Path("/etc/apt/sources.list.d/madoguchi-contrib.sources")
COMPONENT = "contrib"


@dataclass(frozen=True)
class Entry:
    uris: tuple[str, ...]
    suites: tuple[str, ...]
    components: tuple[str, ...]
    signed_by: str | None


def parse_deb822(text: str) -> list[Entry]:
    out: list[Entry] = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = ""
        for line in stanza.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            if line[0] in " \t" and key:
                fields[key] += "\n" + line.strip()
                continue
            key, _, value = line.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if "deb" not in fields.get("types", "").split() or fields.get("enabled") == "no":
            continue
        out.append(Entry(tuple(fields.get("uris", "").split()),
                         tuple(fields.get("suites", "").split()),
                         tuple(fields.get("components", "").split()),
                         fields.get("signed-by")))
    return out


def parse_one_line(text: str) -> list[Entry]:
    out: list[Entry] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line.startswith("deb "):
            continue
        words = line.split()[1:]
        signed_by = None
        if words and words[0].startswith("["):
            options = []
            while words:
                word = words.pop(0)
                options.append(word.strip("[]"))
                if word.endswith("]"):
                    break
            for option in options:
                if option.startswith("signed-by="):
                    signed_by = option.split("=", 1)[1]
        if len(words) >= 3:
            out.append(Entry((words[0],), (words[1],), tuple(words[2:]), signed_by))
    return out


def debian_entries(entries: list[Entry], codename: str) -> list[Entry]:
    """The entries of the release itself (and its -updates), not security or third parties."""
    wanted = {codename, f"{codename}-updates"}
    return [e for e in entries
            if set(e.suites) & wanted and "main" in e.components
            and all(u.rstrip("/").endswith("/debian") for u in e.uris)]


def render(entries: list[Entry], codename: str) -> str | None:
    """The .sources text adding contrib, or None when contrib is already enabled."""
    if any(COMPONENT in e.components for e in entries):
        return None
    wanted = {codename, f"{codename}-updates"}
    stanzas = []
    for e in entries:
        suites = [s for s in e.suites if s in wanted]
        lines = ["Types: deb", f"URIs: {' '.join(e.uris)}", f"Suites: {' '.join(suites)}",
                 f"Components: {COMPONENT}"]
        if e.signed_by:
            lines.append(f"Signed-By: {e.signed_by}")
        stanzas.append("\n".join(lines) + "\n")
    if not stanzas:
        return None
    return ("# written by madoguchi (ivr/apt_contrib.py): the Japanese TTS voice is in contrib\n"
            + "\n".join(stanzas))


def read_sources(etc: Path) -> list[Entry]:
    entries: list[Entry] = []
    legacy = etc / "sources.list"
    if legacy.exists():
        entries += parse_one_line(legacy.read_text(encoding="utf-8"))
    parts = etc / "sources.list.d"
    if parts.is_dir():
        for f in sorted(parts.iterdir()):
            if f == TARGET:
                continue
            if f.suffix == ".list":
                entries += parse_one_line(f.read_text(encoding="utf-8"))
            elif f.suffix == ".sources":
                entries += parse_deb822(f.read_text(encoding="utf-8"))
    return entries


def codename_of(os_release: Path) -> str:
    for line in os_release.read_text(encoding="utf-8").splitlines():
        if line.startswith("VERSION_CODENAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    codename = codename_of(Path("/etc/os-release"))
    entries = debian_entries(read_sources(Path("/etc/apt")), codename)
    if not entries:
        print("apt_contrib: no Debian archive entry found in the apt sources", file=sys.stderr)
        return 1
    text = render(entries, codename)
    if text is None:
        print("apt_contrib: contrib is already enabled")
        return 0
    if args.dry_run:
        print(text, end="")
        return 0
    TARGET.write_text(text, encoding="utf-8")
    print(f"apt_contrib: wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
