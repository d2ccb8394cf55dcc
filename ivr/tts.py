"""Text-to-speech into files Asterisk plays, cached by content hash.

Japanese: Open JTalk (Debian `open-jtalk`, `open-jtalk-mecab-naist-jdic` and the voice
`hts-voice-nitech-jp-atr503-m001` from `contrib`); English: espeak-ng. Output is converted with
sox to 8 kHz mono 16-bit WAV, the only WAV `format_wav` plays. The file name is a hash of the
engine, voice, language and text, so a text is synthesised once, however often it is used,
and a changed text never plays a stale file. A language without a working synthesiser is
reported (logged once) and its prompts fall back to another language, never to silence.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

from core.environ import resolve

log = logging.getLogger(__name__)

OPEN_JTALK_DICT = Path("/var/lib/mecab/dic/open-jtalk/naist-jdic")
OPEN_JTALK_VOICES = [
    Path("/usr/share/hts-voice/nitech-jp-atr503-m001/nitech_jp_atr503_m001.htsvoice"),
]
_TIMEOUT = 30  # seconds for one sentence; Open JTalk takes about 0.3 s here


def _voice(lang: str) -> tuple[list[str], str] | None:
    """The command prefix and a voice id for a language, or None when it cannot speak."""
    if lang == "ja":
        exe = shutil.which("open_jtalk")
        voice = next((v for v in OPEN_JTALK_VOICES if v.exists()), None)
        if exe is None or voice is None or not OPEN_JTALK_DICT.exists():
            return None
        return [exe, "-x", str(OPEN_JTALK_DICT), "-m", str(voice)], f"openjtalk:{voice.name}"
    if lang == "en":
        exe = shutil.which("espeak-ng")
        if exe is None:
            return None
        return [exe, "-v", "en-us", "-s", "150"], "espeak-ng:en-us:150"
    return None


def playable(path: Path, root: Path) -> None:
    """A sound the engine made for Asterisk, which runs as another user sharing the sounds
    folder's group (setgid): group-readable, folders up to `root` group-traversable. The
    engine's umask (077) would otherwise hide prompts from Asterisk."""
    try:
        # a file renamed in from a temporary folder keeps that folder's group: take root's
        os.chown(path, -1, root.stat().st_gid)
        os.chmod(path, 0o640)
        parent = path.parent
        while parent != root and root in parent.parents:
            os.chmod(parent, 0o2750)  # noqa: S103 - the PBX group only
            parent = parent.parent
    except OSError as exc:  # a prompt that plays matters more than its mode
        log.warning("cannot make %s readable by Asterisk: %s", path, exc)


def _place(src: Path, dst: Path) -> None:
    # a copy, not a link: the file's owner and mode are this instance's (see playable)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


class Tts:
    """Renders texts into `<root>/<lang>/<hash>.wav`; returns names without the extension.
    `shared` is the cache shared by every state folder of this machine user (files are
    copied from it): MADOGUCHI_TTS_CACHE or its default, read now when not given."""

    def __init__(self, root: Path, shared: Path | None = None) -> None:
        self.root = root
        self.shared = shared if shared is not None else resolve(None).tts_cache
        self._lock = threading.Lock()
        self._warned: set[str] = set()
        self.synthesised = 0  # how many files were made (not found in the cache)

    def available(self, lang: str) -> bool:
        return _voice(lang) is not None

    def key(self, text: str, lang: str) -> str | None:
        v = _voice(lang)
        if v is None:
            return None
        digest = hashlib.sha256(f"{v[1]}\0{lang}\0{text}".encode()).hexdigest()[:24]
        return f"{lang}/{digest}"

    def render(self, text: str, lang: str) -> str | None:
        """The cached file's name relative to root, without `.wav`; None when impossible."""
        v = _voice(lang)
        key = self.key(text, lang)
        if v is None or key is None:
            if lang not in self._warned:
                self._warned.add(lang)
                log.warning("no text-to-speech for %r installed: its prompts fall back to "
                            "another language", lang)
            return None
        target = self.root / f"{key}.wav"
        if target.exists():
            return key
        cached = self.shared / f"{key}.wav"
        if cached.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            _place(cached, target)
            playable(target, self.root)
            return key
        sox = shutil.which("sox")
        if sox is None:
            raise RuntimeError("sox is not installed (apt-get install sox)")
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            raw = Path(tmp) / "raw.wav"
            if lang == "ja":
                src = Path(tmp) / "text.txt"
                src.write_text(text, encoding="utf-8")
                cmd = [*v[0], "-ow", str(raw), str(src)]
            else:
                # the text is one argv element: no shell is involved
                cmd = [*v[0], "-w", str(raw), "--", text]
            done = subprocess.run(cmd, capture_output=True, check=False, timeout=_TIMEOUT)
            if done.returncode != 0 or not raw.exists():
                log.error("text-to-speech failed for %s: %s", lang,
                          done.stderr.decode(errors="replace")[-300:])
                return None
            part = Path(tmp) / "out.wav"
            subprocess.run([sox, str(raw), "-r", "8000", "-c", "1", "-b", "16", str(part)],
                           check=True, capture_output=True, timeout=_TIMEOUT)
            with self._lock:
                os.replace(part, target)  # atomic: a playing file is never half written
                playable(target, self.root)
                self.synthesised += 1
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            _place(target, cached)
        except OSError as exc:  # the shared cache only saves time; never fail a prompt on it
            log.debug("TTS cache %s not written: %s", cached, exc)
        return key


def concat(parts: list[Path], target: Path, gap_s: float = 0.6) -> None:
    """Join 8 kHz WAV files with short silences into `target`, atomically."""
    sox = shutil.which("sox")
    if sox is None:
        raise RuntimeError("sox is not installed (apt-get install sox)")
    target.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(target.parent, 0o2750)  # noqa: S103 - Asterisk plays it (see playable)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        gap = Path(tmp) / "gap.wav"
        subprocess.run([sox, "-n", "-r", "8000", "-c", "1", "-b", "16", str(gap), "trim", "0",
                        str(gap_s)], check=True, capture_output=True, timeout=_TIMEOUT)
        inputs: list[str] = []
        for p in parts:
            inputs += [str(p), str(gap)]
        if not inputs:
            inputs = [str(gap)]
        out = Path(tmp) / "out.wav"
        subprocess.run([sox, *inputs, str(out)], check=True, capture_output=True,
                       timeout=_TIMEOUT * 4)
        os.chmod(out, 0o640)
        os.replace(out, target)
