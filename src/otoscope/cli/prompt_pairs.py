"""``otoscope pairs context|conflict``: pairs that reach an audio-LLM's prompt, in the folder format ``otoscope listen``
reads; parse, call, print."""

from __future__ import annotations

import argparse
from pathlib import Path

from otoscope.cli.args import positive_int


def word_pair(text: str) -> tuple[str, str]:
    """``WORD=OTHER`` → ``(WORD, OTHER)``, two different non-empty words."""
    word, sep, other = text.partition("=")
    word, other = word.strip(), other.strip()
    if not sep or not word or not other:
        raise argparse.ArgumentTypeError(f"expected WORD=OTHER (e.g. cat=dog), got {text!r}")
    if word.lower() == other.lower():
        raise argparse.ArgumentTypeError(f"the two words are the same ({text!r}); pick another word")
    return word, other


def template(text: str) -> str:
    """A prompt template with exactly one ``{word}`` slot."""
    from otoscope.errors import OtoscopeError
    from otoscope.stimuli.templates import fill

    try:
        fill(text, "word")
    except OtoscopeError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def cmd_prompt_pairs(args) -> None:
    """Build and save a text-context or conflict pair."""
    from otoscope._io import check_output_dir
    from otoscope.audio.io import read_file
    from otoscope.errors import OtoscopeError
    from otoscope.stimuli import prompt_pairs as gen
    from otoscope.stimuli.pairs import PAIR_FILES

    check_output_dir(args.out, PAIR_FILES)  # before any synthesis
    word, other = args.swap
    if args.kind == "context":
        if args.text is not None:
            pair = gen.speech_context_pair(args.text, word, other, args.template, voice=args.voice, speed=args.speed)
        else:
            pair = gen.context_pair(read_file(args.audio, 16_000), word, other, args.template)
    else:
        files = (args.clean, args.corrupt)
        if args.text is not None and any(f is not None for f in files):
            raise OtoscopeError("pass --text (espeak-ng says both words) or --clean and --corrupt files, not both.")
        if args.text is not None:
            pair = gen.speech_conflict_pair(args.text, word, other, args.template, voice=args.voice, speed=args.speed,
                                            align=args.align)
        elif all(f is not None for f in files):
            pair = gen.conflict_pair(read_file(args.clean, 16_000), read_file(args.corrupt, 16_000), word, other,
                                     args.template, args.align)
        else:
            raise OtoscopeError("a conflict pair needs audio of both words: pass --text \"a sentence with WORD\" "
                                "(espeak-ng), or --clean FILE (says WORD) and --corrupt FILE (says OTHER).")
    paths = pair.save(args.out)
    print(f"{pair.kind} pair: {pair.description}; {pair.clean.seconds:.3f} s")
    print(f"  clean prompt:   {pair.prompt}\n  corrupt prompt: {pair.corrupt_prompt}\n"
          f"  answer {pair.answer!r} against {pair.wrong!r}")
    print(f"run it: otoscope listen --model MODEL --pairs {Path(args.out).parent} --out OUT")
    print("wrote " + ", ".join(str(p) for p in paths))


def register_kinds(kinds) -> None:
    """Add ``context`` and ``conflict`` to the ``otoscope pairs`` kinds."""
    from otoscope.stimuli.templates import DEFAULT_TEMPLATE

    for kind, helptext in (("context", "audio-LLMs: the same audio, the prompt names another word (text-context pair)"),
                           ("conflict", "audio-LLMs: the prompt asserts one word, the audio says the other, and "
                                        "the other way round")):
        k = kinds.add_parser(kind, help=helptext)
        k.add_argument("--swap", required=True, type=word_pair, metavar="WORD=OTHER",
                       help="WORD: what the (clean) audio says; OTHER: the competing word, e.g. cat=dog")
        k.add_argument("--template", type=template, default=DEFAULT_TEMPLATE,
                       help=f"prompt with a {{word}} slot (default: {DEFAULT_TEMPLATE!r})".replace("%", "%%"))
        source = k.add_mutually_exclusive_group(required=kind == "context")
        source.add_argument("--text", default=None, help="a sentence holding WORD, spoken by espeak-ng")
        if kind == "context":
            source.add_argument("--audio", default=None, type=Path, help="use this audio file (it says WORD) instead of --text")
        else:
            k.add_argument("--clean", default=None, type=Path, help="audio file that says WORD (instead of --text)")
            k.add_argument("--corrupt", default=None, type=Path, help="audio file that says OTHER")
            k.add_argument("--align", default="pad", choices=("pad", "trim"), help="unequal lengths: pad or trim")
        k.add_argument("--voice", default="en-us", help="espeak-ng voice (espeak-ng --voices=en)")
        k.add_argument("--speed", type=positive_int, default=130, help="words per minute")
        k.add_argument("--out", required=True, type=Path, help="output folder (a pair folder)")
        k.set_defaults(func=cmd_prompt_pairs)
