"""Prompt texts → 8 kHz mono WAV files Asterisk can play, and prompt lookup per language.

Japanese uses Open JTalk when it and a voice are installed, English uses espeak-ng; a prompt
missing in the caller's language falls back to another language rather than to silence.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
from pathlib import Path

from madoguchi.yamlconf import ConfigError, Location, Node, load_yaml

from .flow import LANGUAGES

log = logging.getLogger(__name__)

OPEN_JTALK_DICT = Path("/var/lib/mecab/dic/open-jtalk/naist-jdic")
OPEN_JTALK_VOICES = [
    Path("/usr/share/hts-voice/nitech-jp-atr503-m001/nitech_jp_atr503_m001.htsvoice"),
]


def load_prompt_texts(path: Path) -> dict[str, dict[str, str]]:
    root = Node(load_yaml(path), Location(str(path), 1, 1), "prompts")
    prompts = root.child("prompts", required=True)
    out: dict[str, dict[str, str]] = {}
    for prompt_id in prompts.data:
        texts = prompts.child(prompt_id)
        out[prompt_id] = {}
        for lang in list(texts.data):
            if lang not in LANGUAGES:
                raise ConfigError(texts.at(lang), f"unknown language {lang!r}")
            out[prompt_id][lang] = texts.text(lang)
        texts.done()
    prompts.done()
    root.done()
    return out


def _synthesize(text: str, lang: str, raw_wav: Path) -> bool:
    if lang == "ja":
        voice = next((v for v in OPEN_JTALK_VOICES if v.exists()), None)
        exe = shutil.which("open_jtalk")
        if exe is None or voice is None or not OPEN_JTALK_DICT.exists():
            return False
        with tempfile.NamedTemporaryFile("w", suffix=".txt", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            cmd = [exe, "-x", str(OPEN_JTALK_DICT), "-m", str(voice), "-ow", str(raw_wav),
                   fh.name]
            return subprocess.run(cmd, capture_output=True, check=False).returncode == 0
    exe = shutil.which("espeak-ng")
    if exe is None:
        return False
    # text goes as one argv element: no shell is involved
    cmd = [exe, "-v", "en-us", "-s", "150", "-w", str(raw_wav), text]
    return subprocess.run(cmd, capture_output=True, check=False).returncode == 0


def build_prompts(texts: dict[str, dict[str, str]], out_dir: Path) -> dict[str, list[str]]:
    """Render every prompt; returns {language: [prompt ids rendered]}."""
    sox = shutil.which("sox")
    if sox is None:
        raise RuntimeError("sox is not installed (apt-get install sox)")
    done: dict[str, list[str]] = {lang: [] for lang in LANGUAGES}
    for prompt_id, per_lang in texts.items():
        for lang, text in per_lang.items():
            target = out_dir / lang / f"{prompt_id}.wav"
            target.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory() as tmp:
                raw = Path(tmp) / "raw.wav"
                if not _synthesize(text, lang, raw):
                    log.warning("no text-to-speech for %s; prompt %s/%s not built",
                                lang, lang, prompt_id)
                    continue
                subprocess.run([sox, str(raw), "-r", "8000", "-c", "1", "-b", "16", str(target)],
                               check=True, capture_output=True)
            done[lang].append(prompt_id)
    return done


class PromptLibrary:
    """Maps (prompt id, language) to the file name Asterisk plays (no extension)."""

    def __init__(self, local_dir: Path, asterisk_dir: str) -> None:
        self.local_dir = local_dir
        self.asterisk_dir = asterisk_dir

    def resolve(self, prompt_id: str, language: str) -> str | None:
        for lang in (language, *[lg for lg in LANGUAGES if lg != language]):
            if (self.local_dir / lang / f"{prompt_id}.wav").exists():
                return f"{self.asterisk_dir}/{lang}/{prompt_id}"
        return None
