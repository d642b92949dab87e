"""Regenerate the tables in docs/hooks.md: ``.venv/bin/python docs/gen_hooks.py > docs/hooks_tables.md``.

Names are templated (``blocks.{L}``); shapes are the documented ones; example shapes come from a 1 s
clip on the bundled whisper-tiny.en and the tiny random wav2vec2 / WavLM.
"""

import re

import otoscope


def table(name: str) -> str:
    model = otoscope.load(name)
    rows, seen = [], set()
    for info in model.hook_table():
        key = re.sub(r"blocks\.\d+\.", "blocks.{L}.", info.name)
        if key in seen:
            continue
        seen.add(key)
        example = "×".join(map(str, info.example)) if info.example else "–"
        rows.append(f"| `{key}` | `{info.shape}` | {example} | {info.doc} |")
    head = f"### {name}\n\n| hook | shape | example (1 s clip) | what it is |\n|---|---|---|---|\n"
    return head + "\n".join(rows) + "\n"


if __name__ == "__main__":
    for name in ("whisper-tiny.en", "tiny-random-wav2vec2", "tiny-random-wav2vec2-stable", "tiny-random-wavlm",
                 "tiny-random-qwen2audio", "tiny-random-voxtral", "tiny-random-musicgen"):
        print(table(name))
