"""Prompts: texts per language (config/prompts.yaml) or recorded files, resolved per language.

A prompt is rendered once when a flow set loads (TTS cache keyed by content), never per call.
A prompt a language lacks falls back to another language, and the fallback is reported to the
caller's adapter so it is logged, never silent.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from core.yamlconf import ConfigError, Location, Node, load_yaml

from .errors import Problems
from .tts import Tts

log = logging.getLogger(__name__)

LANGUAGES = ("ja", "en")


@dataclass(frozen=True)
class Audio:
    """One thing to say: what (text), in which language, and the file Asterisk plays."""

    key: str  # prompt id, or a generated key for inline texts and board announcements
    language: str  # the language asked for
    text: str  # what is said, for dry runs and logs
    sound: str | None  # name relative to the sounds folder, without extension; None: nothing
    spoken: str | None = None  # the language actually played when it differs (a fallback)


@dataclass(frozen=True)
class Prompt:
    id: str
    texts: dict[str, str] = field(hash=False)
    sounds: dict[str, str] = field(hash=False)  # language -> sound name (only those rendered)

    def audio(self, language: str) -> Audio:
        order = (language, *[lg for lg in LANGUAGES if lg != language],
                 *[lg for lg in self.sounds if lg not in LANGUAGES])
        for lang in order:
            sound = self.sounds.get(lang)
            if sound is not None:
                text = self.texts.get(lang, "")
                return Audio(self.id, language, text, sound, None if lang == language else lang)
        text = self.texts.get(language) or next(iter(self.texts.values()), "")
        return Audio(self.id, language, text, None, None)


@dataclass(frozen=True)
class PromptSource:
    """Where a prompt came from: texts for TTS and/or recorded files, per language."""

    texts: dict[str, str] = field(default_factory=dict, hash=False)
    files: dict[str, Path] = field(default_factory=dict, hash=False)
    where: Location | None = None


def load_prompt_texts(path: Path) -> dict[str, dict[str, str]]:
    """prompts.yaml as {id: {language: text}}; raises on the first error."""
    problems = Problems()
    out = read_prompts(path, problems)
    if problems:
        raise problems.sorted()[0]
    return {k: dict(v.texts) for k, v in out.items()}


def read_prompts(path: Path, problems: Problems) -> dict[str, PromptSource]:
    try:
        root = Node(load_yaml(path), Location(str(path), 1, 1), "prompts")
        prompts = root.child("prompts", required=True)
        root.done()
    except ConfigError as exc:
        problems.add(exc)
        return {}
    out: dict[str, PromptSource] = {}
    for prompt_id in prompts.data:
        try:
            texts = prompts.child(prompt_id)
            per_lang: dict[str, str] = {}
            for lang in list(texts.data):
                if lang not in LANGUAGES:
                    raise ConfigError(texts.at(lang), f"unknown language {lang!r}")
                per_lang[lang] = texts.text(lang)
            texts.done()
            out[prompt_id] = PromptSource(per_lang, {}, prompts.at(prompt_id))
        except ConfigError as exc:
            problems.add(exc)
    return out


def render_prompt(prompt_id: str, source: PromptSource, tts: Tts | None, sounds_dir: Path,
                  dry: bool = False) -> Prompt:
    """Synthesise or convert each language once (cached); `dry` renders nothing."""
    sounds: dict[str, str] = {}
    for lang, file in source.files.items():
        sounds[lang] = f"dry:{file.name}" if dry else _convert(file, sounds_dir)
    for lang, text in source.texts.items():
        if lang in sounds or tts is None:
            continue
        if dry:
            key = tts.key(text, lang)
            if key is not None:
                sounds[lang] = f"tts/{key}"
            continue
        rendered = tts.render(text, lang)
        if rendered is not None:
            sounds[lang] = f"tts/{rendered}"
    return Prompt(prompt_id, dict(source.texts), sounds)


def _convert(file: Path, sounds_dir: Path) -> str:
    """A recorded prompt converted to 8 kHz mono WAV, named by the source file's content."""
    digest = hashlib.sha256(file.read_bytes()).hexdigest()[:24]
    target = sounds_dir / "files" / f"{digest}.wav"
    if not target.exists():
        sox = shutil.which("sox")
        if sox is None:
            raise RuntimeError("sox is not installed (apt-get install sox)")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.parent.chmod(0o2750)  # Asterisk plays it, as another user of the group
        tmp = target.with_suffix(".tmp.wav")
        subprocess.run([sox, str(file), "-r", "8000", "-c", "1", "-b", "16", str(tmp)],
                       check=True, capture_output=True, timeout=60)
        tmp.chmod(0o640)
        tmp.replace(target)
    return f"files/{digest}"


def build_prompts(texts: dict[str, dict[str, str]], out_dir: Path,
                  tts_cache: Path | None = None) -> dict[str, list[str]]:
    """Render every prompt text into the TTS cache; returns {language: [prompt ids rendered]}.

    Used by `madoguchi up` and `pbx config` so the first call finds the cache warm.
    """
    tts = Tts(out_dir / "tts", tts_cache)
    done: dict[str, list[str]] = {lang: [] for lang in LANGUAGES}
    for prompt_id, per_lang in texts.items():
        for lang, text in per_lang.items():
            if tts.render(text, lang) is not None:
                done[lang].append(prompt_id)
    return done
