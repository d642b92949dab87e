"""``otoscope patch`` and ``otoscope pairs``: parse, call :mod:`otoscope.patching` / :mod:`otoscope.stimuli`, print.

Wired into the ``otoscope`` command by :func:`register`.
"""

from __future__ import annotations

import json
from pathlib import Path

from otoscope.cli.args import device, finite_float, nonneg_float, nonneg_int, positive_float, positive_int
from otoscope.cli.prompt_pairs import register_kinds
from otoscope.errors import OtoscopeError


def _window(text: str):
    """``--window``: a finite number > 0, or ``all`` (one cell over every position)."""
    import argparse

    if text.lower() in ("all", "none"):
        return None
    try:
        return positive_float(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected a finite number > 0 or 'all', got {text!r}") from None


def _neurons(text: str):
    """``--neurons``: comma-separated indices."""
    import argparse

    try:
        return [int(n) for n in text.split(",") if n.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--neurons takes comma-separated indices (e.g. 0,5,17), got {text!r}") from None


def _pair_of(clean_value, corrupt_value):
    if corrupt_value is None or corrupt_value == clean_value:
        return clean_value
    return (clean_value, corrupt_value)


def cmd_patch(args) -> None:
    """``otoscope patch``: one sweep → DIR/patch.json, patch_meta.json, heatmap.png."""
    from otoscope._io import check_output_dir
    from otoscope.cli.from_config import config_from_args
    from otoscope.models.loader import load
    from otoscope.patching import PairConfig, SweepConfig, agreement, open_session, sweep
    from otoscope.patching.grounding import grounding_coefficient
    from otoscope.stimuli.pairs import load_pair
    from otoscope.patching.plots import prefetch as prefetch_plotting
    from otoscope.patching.result import PATCH_FILES

    check_output_dir(args.out, PATCH_FILES)

    words, pair_text, pair_answer, pair_wrong = [], None, None, None
    clean, corrupt = args.clean, args.corrupt
    if args.pair is not None:
        pair = load_pair(args.pair)
        clean, corrupt = clean or pair.clean, corrupt or pair.corrupt
        words, pair_text, pair_answer, pair_wrong = pair.clean_words, pair.text, pair.answer, pair.wrong
    if clean is None or corrupt is None:
        raise OtoscopeError("pass --clean and --corrupt audio files, or --pair DIR/pair.json from 'otoscope pairs'.")
    pair_config = config_from_args(PairConfig, args, answer=args.answer if args.answer is not None else pair_answer,
                                   wrong=args.wrong if args.wrong is not None else pair_wrong)
    config = config_from_args(SweepConfig, args, window_unit="seconds" if args.seconds else "frames",
                              token_window=None if args.all_tokens else args.token_window)
    model = load(args.model, device=args.device)
    text = _pair_of(args.text if args.text is not None else pair_text, args.corrupt_text)
    prompt = _pair_of(args.prompt, args.corrupt_prompt)
    session = open_session(model, clean, corrupt, pair_config, text=text, prompt=prompt, progress=True)
    prefetch_plotting()  # the heatmap's matplotlib import overlaps the sweep
    result = sweep(session, config, words)
    if args.compare:
        other = sweep(session, config, words, method="attribution" if config.method == "exact" else "exact")
        exact, estimate = (result, other) if config.method == "exact" else (other, result)
        result.context["agreement"] = agreement(exact, estimate).to_json()
    gc = grounding_coefficient(session, config.direction) if args.grounding else None
    paths = result.save(args.out, extra={"grounding.json": json.dumps(gc.to_json(), indent=1)} if gc else None)
    if gc is not None:
        for layer in gc.layers:
            print(f"decoder layer {layer.layer}: gc {layer.gc:.3f}  Δaudio {layer.delta_audio:.3f}  "
                  f"Δtext {layer.delta_text:.3f}" + (f"  ({layer.note})" if layer.note else ""))
    print(f"{result.direction} · {result.method} · {result.metric}: clean {result.clean:.4f}, corrupt {result.corrupt:.4f}; "
          f"{len(result.cells)} cells; alignment: {result.context.get('alignment')}")
    for note in result.notes:
        print(f"note: {note}")
    if "agreement" in result.context:
        a = result.context["agreement"]
        print(f"{estimate.method} vs exact: spearman {a['spearman']}, max |error| {a['max_abs_error']} (normalised)")
    for c in result.strongest(5):
        where = f"{c.seconds[0]:.2f}–{c.seconds[1]:.2f} s" if c.seconds else (f"tokens {c.tokens[0]}–{c.tokens[1]}" if c.tokens else "")
        extra = (f" head {c.head}" if c.head is not None else "") + (f" neuron {c.neuron}" if c.neuron is not None else "")
        print(f"  {c.hook}{extra} {where}: {c.value:.4f} (normalised {c.normalized:.3f})")
    print("wrote " + ", ".join(str(p) for p in paths))


def cmd_pairs(args) -> None:
    """``otoscope pairs KIND``: synthesise or derive a minimal pair → DIR/clean.flac, corrupt.flac, pair.json."""
    from otoscope._io import check_output_dir
    from otoscope.audio.io import read_file
    from otoscope.stimuli.degrade import add_noise, replace_span
    from otoscope.stimuli.pairs import PAIR_FILES
    from otoscope.stimuli.speech import synthesize
    from otoscope.stimuli.swaps import voice_swap, word_swap

    check_output_dir(args.out, PAIR_FILES)

    def source():
        if getattr(args, "clean", None) is not None:
            return read_file(args.clean, 16_000)
        if not args.text:
            raise OtoscopeError("pass --text to synthesise the clean clip, or --clean FILE.")
        return synthesize(args.text, args.voice, args.speed)

    if args.kind in ("word", "voice") and not args.text:
        raise OtoscopeError(f"'otoscope pairs {args.kind}' synthesises speech: pass --text \"a sentence\".")
    if args.kind == "word":
        if not args.swap or "=" not in args.swap:
            raise OtoscopeError("--swap takes OLD=NEW, e.g. --swap London=Paris.")
        old, new = args.swap.split("=", 1)
        pair = word_swap(args.text, old.strip(), new.strip(), voice=args.voice, speed=args.speed, align=args.align)
    elif args.kind == "voice":
        pair = voice_swap(args.text, args.voice, args.other_voice, speed=args.speed, align=args.align)
    elif args.kind == "noise":
        pair = add_noise(source(), args.snr, noise=args.noise, seed=args.seed)
    else:
        pair = replace_span(source(), args.start, args.end, word=args.word, fill=args.fill, snr_db=args.snr,
                               seed=args.seed)
    pair.prompt = args.prompt
    paths = pair.save(args.out)
    print(f"{pair.factor} pair: {pair.description}; {pair.clean.seconds:.3f} s; alignment: {pair.alignment}")
    if pair.clean_words:
        print("words: " + " ".join(f"{w.word}[{w.start:.2f}–{w.end:.2f}]" for w in pair.clean_words))
    if pair.answer:
        hint = f"otoscope patch --pair {Path(args.out) / 'pair.json'} --hooks 'encoder.blocks.*.hook_resid_post' --out OUT"
        if not pair.wrong:
            hint += " --metric logprob"
        print(f"patch it: {hint}")
    print("wrote " + ", ".join(str(p) for p in paths))


def register(subparsers) -> None:
    """Add the ``patch`` and ``pairs`` subcommands to the ``otoscope`` parser's subparsers."""
    from otoscope.cli.from_config import add_config_flags
    from otoscope.models.registry import DEFAULT_MODEL
    from otoscope.patching.config import BUILTIN_METRICS, PairConfig, SweepConfig

    p = subparsers.add_parser("patch", help="activation patching of a clean/corrupt pair → patch.json + heatmap")
    p.add_argument("--clean", default=None, help="clean audio file")
    p.add_argument("--corrupt", default=None, help="corrupt audio file")
    p.add_argument("--pair", default=None, help="pair.json from 'otoscope pairs' (clips, text, answers, word spans)")
    p.add_argument("--text", default=None, help="teacher-forced transcript so far (Whisper), e.g. ' My name is'")
    p.add_argument("--corrupt-text", default=None, help="a different text for the corrupt run (text-context pair)")
    p.add_argument("--prompt", default=None, help="Whisper previous-text prompt")
    p.add_argument("--corrupt-prompt", default=None, help="a different prompt for the corrupt run (text-context pair)")
    # the pair's and the sweep's options: flags, defaults and help from the config dataclasses' fields
    add_config_flags(p, PairConfig, choices={"metric": BUILTIN_METRICS})
    add_config_flags(p, SweepConfig, skip=("window_unit",), defaults={"batch_size": 8},
                     types={"window": _window, "stride": positive_float, "token_window": positive_int,
                            "neurons": _neurons, "ig_steps": positive_int, "top_k": positive_int, "seed": nonneg_int,
                            "batch_size": positive_int})
    p.add_argument("--seconds", action="store_true", help="--window and --stride are in seconds (window_unit)")
    p.add_argument("--all-tokens", action="store_true", help="one cell over all decoder positions (token_window None)")
    p.add_argument("--compare", action="store_true", help="also run exact patching (or attribution, when --method is "
                   "exact) and report their agreement")
    p.add_argument("--grounding", action="store_true", help="also write the grounding coefficient per decoder layer")
    p.add_argument("--model", "-m", default=DEFAULT_MODEL, help=f"model name, HF id or folder (default {DEFAULT_MODEL})")
    p.add_argument("--device", default=None, type=device, help="cpu, cuda, ... (default cpu)")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.set_defaults(func=cmd_patch)

    p = subparsers.add_parser("pairs", help="build an audio minimal pair (word swap, voice, noise, span)")
    kinds = p.add_subparsers(dest="kind", required=True)
    for kind, helptext in (("word", "same voice, one word swapped (espeak-ng)"),
                           ("voice", "same words, another voice (espeak-ng)"),
                           ("noise", "additive noise at a signal-to-noise ratio"),
                           ("span", "a time span or word replaced by silence or noise")):
        k = kinds.add_parser(kind, help=helptext)
        k.add_argument("--text", default=None, help="sentence to synthesise with espeak-ng")
        k.add_argument("--voice", default="en-us", help="espeak-ng voice (espeak-ng --voices=en)")
        k.add_argument("--speed", type=positive_int, default=130, help="words per minute")
        k.add_argument("--out", required=True, type=Path, help="output folder")
        k.add_argument("--prompt", default=None, help="audio-LLM question for both runs, written to pair.json for "
                                                      "'otoscope listen' (e.g. \"Which city does the speaker name?\")")
        if kind in ("noise", "span"):
            k.add_argument("--clean", default=None, type=Path, help="use this audio file instead of --text")
            k.add_argument("--seed", type=nonneg_int, default=0)
            k.add_argument("--snr", type=finite_float, default=10.0 if kind == "noise" else 0.0, help="signal-to-noise ratio (dB)")
        if kind in ("word", "voice"):
            k.add_argument("--align", default="pad", choices=("pad", "trim"), help="unequal lengths: pad or trim")
        if kind == "word":
            k.add_argument("--swap", required=True, help="OLD=NEW, e.g. London=Paris")
        elif kind == "voice":
            k.add_argument("--other-voice", default="en-gb", help="the corrupt clip's voice")
        elif kind == "noise":
            k.add_argument("--noise", default="white", choices=("white", "pink"))
        else:
            k.add_argument("--start", type=nonneg_float, default=None, help="span start (s)")
            k.add_argument("--end", type=nonneg_float, default=None, help="span end (s)")
            k.add_argument("--word", default=None, help="replace this word's span instead")
            k.add_argument("--fill", default="silence", choices=("silence", "noise"))
        k.set_defaults(func=cmd_pairs)
    register_kinds(kinds)  # context, conflict: pairs that reach an audio-LLM's prompt
