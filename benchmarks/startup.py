"""Start-up time: ``otoscope --help``, the imports a model load needs, and loading the bundled Whisper models.

Run: .venv/bin/python benchmarks/startup.py [--runs=5]

Every figure is the median over ``--runs`` fresh Python processes (each started with this interpreter, so
the operating system's file cache is warm after the first, as it is for a user running commands in a row):

* help_s: wall time of the whole process ``python -c "<otoscope's console script>" --help``, interpreter
  start included, as a user waits for it.
* import_s: inside a fresh process, ``import otoscope`` plus torch, transformers and the transformers
  modules a Whisper load imports (modeling, tokenizer, feature extractor) — what any command that touches a
  model pays before its first line of work. Timed with ``time.perf_counter`` around the imports.
* load_tiny_s, load_base_s: in the same kind of process, after those imports, ``otoscope.load(name)`` of the
  converted, cached whisper-tiny.en / whisper-base (weights, tokenizer, feature extractor, hook points).
  Each model is loaded once beforehand so that conversion (first use only) is not timed.

The baseline for a model load is what transformers' ``from_pretrained`` costs on the same folder; it is
printed as from_pretrained_tiny_s / from_pretrained_base_s (model + AutoTokenizer + AutoFeatureExtractor,
timed the same way). Last line: one JSON object.
"""

import json
import statistics
import subprocess
import sys

RUNS = next((int(a.split("=", 1)[1]) for a in sys.argv[1:] if a.startswith("--runs=")), 5)

HELP = "import sys; from otoscope.cli.main import main; sys.argv[0] = 'otoscope'; sys.exit(main())"

CHILD = """
import json, sys, time
start = time.perf_counter()
import otoscope, torch, transformers
from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration, WhisperTokenizer
import otoscope.models.hooked
imported = time.perf_counter()
name, how = sys.argv[1], sys.argv[2]
if how == "otoscope":
    otoscope.load(name)
else:
    from transformers import AutoFeatureExtractor, AutoTokenizer
    from otoscope.models import bundled
    folder = bundled.ensure_converted(bundled.BUNDLED[name])
    WhisperForConditionalGeneration.from_pretrained(folder)
    AutoTokenizer.from_pretrained(folder)
    AutoFeatureExtractor.from_pretrained(folder)
loaded = time.perf_counter()
print(json.dumps({"import_s": imported - start, "load_s": loaded - imported}))
"""


def child(name: str, how: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, name, how], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def wall(args: list[str]) -> float:
    import time

    start = time.perf_counter()
    subprocess.run(args, capture_output=True, check=True)
    return time.perf_counter() - start


def main():
    for name in ("whisper-tiny.en", "whisper-base"):
        child(name, "otoscope")  # converts on first use; not timed
    help_s = statistics.median(wall([sys.executable, "-c", HELP, "--help"]) for _ in range(RUNS))
    report = {"runs": RUNS, "help_s": round(help_s, 3)}
    for key, name in (("tiny", "whisper-tiny.en"), ("base", "whisper-base")):
        runs = [child(name, "otoscope") for _ in range(RUNS)]
        if key == "tiny":
            report["import_s"] = round(statistics.median(r["import_s"] for r in runs), 3)
        report[f"load_{key}_s"] = round(statistics.median(r["load_s"] for r in runs), 3)
        ref = [child(name, "from_pretrained") for _ in range(RUNS)]
        report[f"from_pretrained_{key}_s"] = round(statistics.median(r["load_s"] for r in ref), 3)
        print(f"{name}: otoscope.load {report[f'load_{key}_s']:.2f} s, from_pretrained + AutoTokenizer + "
              f"AutoFeatureExtractor {report[f'from_pretrained_{key}_s']:.2f} s (after imports)")
    print(f"otoscope --help {help_s:.2f} s; imports a load needs {report['import_s']:.2f} s")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
