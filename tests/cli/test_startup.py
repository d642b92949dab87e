"""Start-up: ``otoscope --help``, ``--version`` and argparse errors never import the heavy libraries."""

import subprocess
import sys

import otoscope

HEAVY = ("torch", "transformers", "matplotlib")


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_parser_imports_nothing_heavy():
    proc = _run("import sys, otoscope.cli.main as m; m.build_parser(); "
                f"print(sorted(set({HEAVY!r}) & set(sys.modules)))")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_version_and_bad_flag_import_nothing_heavy():
    code = ("import sys, otoscope.cli.main as m\n"
            "try:\n    m.main({argv!r})\nexcept SystemExit as e:\n    code = e.code\n"
            f"print(code, sorted(set({HEAVY!r}) & set(sys.modules)), file=sys.stderr)")
    version = _run(code.format(argv=["--version"]))
    assert version.stdout.strip() == f"otoscope {otoscope.__version__}"
    assert version.stderr.strip().endswith("0 []")
    bad = _run(code.format(argv=["patch", "--no-such-flag", "--out", "x"]))
    assert "unrecognized arguments: --no-such-flag" in bad.stderr
    assert bad.stderr.strip().splitlines()[-1] == "2 []"
    helps = _run(code.format(argv=["sae", "train", "--help"]))
    assert "--activations" in helps.stdout and helps.stderr.strip() == "0 []"


def test_public_names_load_lazily():
    proc = _run("import sys, otoscope; assert 'torch' not in sys.modules; "
                "from otoscope import load, HookedAudioModel, OtoscopeError; import otoscope.patching as p; "
                "assert callable(p.sweep) and p.PatchConfig().window == 10; "
                "assert 'load' in dir(otoscope) and otoscope.load is load; print(HookedAudioModel.__name__)")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "HookedAudioModel"


def test_unknown_public_name_is_an_attribute_error():
    try:
        otoscope.no_such_name  # noqa: B018
    except AttributeError as err:
        assert "no_such_name" in str(err)
    else:
        raise AssertionError("expected AttributeError")


def test_version_matches_pyproject():
    from pathlib import Path

    text = (Path(__file__).parents[2] / "pyproject.toml").read_text()
    assert f'version = "{otoscope.__version__}"' in text
