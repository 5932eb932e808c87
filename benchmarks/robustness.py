"""Robustness report: every bad-input and interruption test, with more fuzz examples and more kills than CI runs.

    python benchmarks/robustness.py                      # 20x the fuzz examples, 2 kills per interruption test
    python benchmarks/robustness.py --scale 1 --repeats 1   # what CI runs (derandomized), for comparison

Runs the tests below through pytest in a subprocess (EDGEREC_FUZZ_SCALE, EDGEREC_INTERRUPT_REPEATS, a fixed
--hypothesis-seed, --junitxml), probes Ctrl-C during the CLI's start-up, and writes results/robustness.md: per entry
point the bad input tried, the fuzz examples run, the interruptions survived and the result; then the bugs the
fuzzing found, each with the regression test that guards it. Takes about 10 minutes on 2 idle cores.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from edgerec.sysinfo import machine, provenance

REPO = Path(__file__).resolve().parents[1]
SMALL = "synthetic:users=300,items=180,seed=3"


@dataclass(frozen=True)
class Entry:
    name: str
    tried: str
    tests: tuple[str, ...]  # node-id prefixes
    kills: bool = False  # each passing test is one interruption survived


F_IN, F_LD, F_PQ = "tests/test_fuzz_inputs.py::", "tests/test_fuzz_loaders.py::", "tests/test_fuzz_parquet.py::"
F_UP, KILL = "tests/test_fuzz_update.py::", "tests/test_interrupt_commands.py::test_killed_command_leaves_the_previous"
ENTRIES = [
    Entry(
        "profiles (YAML)",
        "any Unicode text as the file; any field of a shipped profile set to any JSON value (null, bool, integers to "
        "±1e12, floats with NaN/inf, text, nested lists and maps)",
        (F_IN + "test_any_profile_text", F_IN + "test_profile_with_any_field_value"),
    ),
    Entry(
        "data: ratings.dat, u.data",
        "rows of 0-5 cells from integers, blanks, `x`, `1e3`, `nan`, `-0`, a 30-digit number, `1.5`; any text",
        (F_LD + "test_movielens_text",),
    ),
    Entry(
        "data: CSV",
        "five headers (complete, no timestamp, unknown names, extra rating column, empty) over the same cells; "
        "regressions: bare CR and NUL, ids beyond int64, timestamps 1e400",
        (F_LD + "test_csv",),
    ),
    Entry(
        "data: NCF split folder",
        "train / test / negatives files of the same cells, 0-102 columns per line, mismatched files",
        (F_LD + "test_ncf_split",),
    ),
    Entry(
        "data: random bytes",
        "up to 300 random bytes as ratings.dat, u.data, .csv and .zip",
        (F_LD + "test_binary_garbage",),
    ),
    Entry(
        "data: MovieLens zip",
        "a member named `../../evil/ratings.dat` (read in memory, nothing extracted); not a zip",
        ("tests/test_loaders.py::test_zip_member_with_traversal_name", "tests/test_loaders.py::test_missing_path_and"),
    ),
    Entry(
        "data: Parquet",
        "tables of 0-8 rows and 0-4 columns of 17 Arrow types (int8/64, uint64 to 2^64-1, float32/64 with NaN/inf, "
        "bool, string and binary with NUL, dictionary, decimal, timestamp ms/ns+tz and date32 over their whole "
        "range, duration, list, struct, null), with nulls, odd or duplicate-looking names; a valid table with one "
        "column replaced, dropped or renamed; 21 type casts that keep the values (same dataset required); a valid "
        "file truncated and with up to 4 bytes changed; random bytes with and without PAR1 framing",
        (F_PQ,),
    ),
    Entry(
        "data: synthetic spec",
        "zero, negative, unknown and non-numeric parameters; sizes beyond the available memory (refused before "
        "allocating, with how much they would need)",
        (F_LD + "test_bad_synthetic_specs", "tests/test_loaders.py::test_synthetic_sizes_are_checked"),
    ),
    Entry(
        "every path argument of every command",
        "enumerated from the parser: missing paths (with spaces and glob characters), empty folders, a checkpoint "
        "where an artifact goes and the reverse, config.json without weights and weights without config, files for "
        "folders and folders for files, existing files as --out",
        ("tests/test_bad_paths.py::",),
    ),
    Entry(
        "foreign models (`edgerec import`)",
        "a file of another format than --format, missing / extra keys, shapes that are no NeuMF, id maps of the "
        "wrong length, an h5 without layer_names, torn and junk files, a failed fidelity check; a pickle whose "
        "__reduce__ would run a command (read without running it or importing what it names)",
        (
            "tests/test_import.py::test_bad_input",
            "tests/test_import.py::test_fidelity_failure",
            "tests/test_import.py::test_a_pickle_that_would_run",
            "tests/test_import.py::test_tensor_rebuild_is_bounds_checked",
        ),
    ),
    Entry(
        "update: new interactions",
        "CSV against the parent's id maps: six headers (extra, swapped, missing columns, empty) over 1-4 cells of ids "
        "-3..400, empty, words, a 25-digit number, `1.5`, `nan`, `007`",
        (F_UP + "test_new_interactions",),
    ),
    Entry(
        "phone deltas (`apply-delta`)",
        "up to 3 fields of delta.json (ranges, model_bytes, model_file, files, parent, patches_sha256, format) set to "
        "null, integers, text, overlapping or negative ranges, a `../x` file entry, a wrong hash",
        (F_UP + "test_delta_records",),
    ),
    Entry(
        "artifact manifests",
        "format, format_version, files, model_file, n_users, target or runtime set to any JSON value; a file entry "
        "`../outside` (path traversal)",
        (F_IN + "test_manifest_with_any_field_value", F_IN + "test_manifest_file_entries_cannot_point_outside"),
    ),
    Entry(
        "phone bundles",
        "a flipped byte in model.tflite, a missing file, an ONNX artifact as a bundle, k beyond the catalog; user "
        "vectors of the wrong length or dtype, NaN, inf",
        ("tests/test_bundle.py::test_tampered_or_foreign", "tests/test_bundle.py::test_bad_user_vectors"),
    ),
    Entry(
        "runtime ids",
        "ids to ±2^40 as int64, int32, uint8, float32, bool; mismatched lengths; empty batches",
        (F_IN + "test_runtime_ids",),
    ),
    Entry(
        "checkpoints",
        "pickled files (`.pt` given, or beside the weights: refused, never unpickled); config.json that lies about "
        "the shapes; changed weights",
        (
            "tests/test_model.py::test_pickle_files_are_refused",
            "tests/test_model.py::test_config_json_that_lies",
            "tests/test_model.py::test_checkpoint_round_trip_and_integrity",
        ),
    ),
    Entry(
        "`edgerec export` interrupted",
        "SIGINT and SIGKILL at a seeded random point early in the write (ONNX int8)",
        ("tests/test_interrupt_export.py::",),
        kills=True,
    ),
    Entry(
        "`edgerec train` interrupted",
        "SIGINT and SIGKILL at a seeded random point of the run, and while the finished checkpoint is being written",
        (KILL + "_checkpoint_intact[train-", "tests/test_cli.py::test_ctrl_c_during_training"),
        kills=True,
    ),
    Entry(
        "`edgerec update` interrupted",
        "the same, for an update of the small model with 20 new users",
        (KILL + "_checkpoint_intact[update-",),
        kills=True,
    ),
    Entry(
        "concurrent writers",
        "a second `edgerec export` into the --out of one that is writing; nested writers in one process; a failed "
        "writer; a stale lock file",
        ("tests/test_write_lock.py::",),
    ),
]

# (commit, what was wrong, the test that guards it); from `git log --oneline | grep -i -E "fix|fuzz"`
BUGS = [
    ("40c5986", "a manifest or checkpoint whose format_version was not an integer crashed the reader (TypeError)",
     F_IN + "test_manifest_with_any_field_value_is_refused_cleanly_or_loads"),
    ("40c5986", "manifest file entries could name paths outside the artifact folder (`../outside`)",
     F_IN + "test_manifest_file_entries_cannot_point_outside_the_artifact"),
    ("0231611", "errors echoed untrusted values in full (a long profile value, target or runtime name made the "
     "one-line error arbitrarily long)",
     F_IN + "test_profile_with_any_field_value_gives_a_profile_or_one_line_error"),
    ("98d50cf", "CSV with a bare CR or a NUL raised csv.Error",
     F_LD + "test_csv_with_a_bare_carriage_return_and_nul_is_a_clean_error"),
    ("98d50cf", "CSV ids beyond int64 raised OverflowError (kept as opaque strings now)",
     F_LD + "test_csv_ids_beyond_int64_are_kept_as_opaque_strings"),
    ("98d50cf", "non-finite or out-of-range timestamps were silently cast",
     F_LD + "test_csv_timestamps_out_of_range_are_refused"),
    ("aa04143", "Parquet dates and times beyond Python's datetime (year > 9999), and nanosecond timestamps without "
     "pandas, crashed to_pylist (OverflowError / ValueError); now read as the integers Parquet stores",
     F_PQ + "test_timestamps_beyond_pythons_datetime_are_read_as_stored_integers"),
    ("aa04143", "a Parquet column pyarrow cannot convert (a list of such times) crashed the loader",
     F_PQ + "test_an_unreadable_column_is_a_clean_error"),
    ("aa04143", "integer timestamps went through float64: nanosecond timestamps 1 ns apart became equal",
     F_PQ + "test_integer_timestamps_stay_exact"),
    ("aa04143", "fractional float / decimal ids were truncated: users 0.25 and 0.5 became one user 0",
     F_PQ + "test_fractional_float_ids_are_distinct_ids"),
    ("aa04143", "NaN ids (missing values in float columns) were taken as an id `nan`",
     F_PQ + "test_nan_ids_are_missing_ids"),
    ("aa04143", "ids `a` and `a\\0` became one id (numpy strings drop trailing NULs)",
     F_PQ + "test_ids_with_nul_characters_are_refused"),
    ("aa04143", "ratings beyond float32 passed the finiteness check and became inf",
     F_PQ + "test_ratings_beyond_float32_are_refused"),
    ("76d9648", "new interactions with 20+-digit ids for an integer-keyed model raised StopIteration",
     F_UP + "test_new_interactions_against_the_parents_maps"),
    ("76d9648", "a delta record without the parent's version raised KeyError; one with a non-string model file name "
     "raised TypeError", F_UP + "test_delta_records"),
    ("7452c53", "a profile whose YAML keys are not text (`?` parses as {None: None}) raised TypeError",
     F_IN + "test_profile_keys_that_are_not_text_are_one_line[?]"),
    ("cf30924", "two writers into one --out could discard each other's output, or crash renaming onto the other's "
     "new folder (no lock); an item of the issue, not found by fuzzing",
     "tests/test_write_lock.py::test_a_second_export_into_the_same_folder_fails_at_once_and_the_first_completes"),
]  # fmt: skip

EXTRA_TESTS = [
    "tests/test_loaders.py::test_zip_member_with_traversal_name_is_read_in_memory_not_extracted",
    "tests/test_loaders.py::test_missing_path_and_bad_zip",
    "tests/test_loaders.py::test_synthetic_sizes_are_checked_before_allocating",
    "tests/test_bundle.py::test_tampered_or_foreign_bundles_are_refused",
    "tests/test_bundle.py::test_bad_user_vectors_are_one_line_errors",
    "tests/test_model.py::test_pickle_files_are_refused",
    "tests/test_model.py::test_config_json_that_lies_about_shapes_is_refused",
    "tests/test_model.py::test_checkpoint_round_trip_and_integrity_checks",
    "tests/test_cli.py::test_ctrl_c_during_training_exits_130_and_keeps_the_previous_checkpoint",
]
FILES = [f"tests/test_{name}.py" for name in ("fuzz_inputs", "fuzz_loaders", "fuzz_parquet", "fuzz_update",
                                              "interrupt_export", "interrupt_commands", "write_lock", "bad_paths",
                                              "import")]  # fmt: skip
STATS = re.compile(r"(\d+) passing, (\d+) failing, and (\d+) invalid")


def default_sigint() -> None:
    """Ctrl-C as in a terminal for the tests' processes, also when this script runs as a background job (whose
    SIGINT a non-interactive shell ignores, and Python keeps ignoring)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_tests(scale: int, repeats: int, seed: int, junit: Path) -> tuple[dict[str, str], dict[str, int], float]:
    """-> (node id -> passed / failed / skipped, node id -> fuzz examples run, seconds)."""
    env = {**os.environ, "EDGEREC_FUZZ_SCALE": str(scale), "EDGEREC_INTERRUPT_REPEATS": str(repeats)}
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-m", "not slow", f"--junitxml={junit}",
           "--hypothesis-show-statistics", f"--hypothesis-seed={seed}", *FILES, *EXTRA_TESTS]  # fmt: skip
    start = time.time()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, preexec_fn=default_sigint)
    seconds = time.time() - start
    if not junit.is_file():
        sys.exit(f"pytest wrote no report (exit {proc.returncode}):\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    outcomes = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        node = f"{case.get('classname', '').replace('.', '/')}.py::{case.get('name')}"
        kinds = {child.tag for child in case}
        outcomes[node] = "failed" if kinds & {"failure", "error"} else "skipped" if "skipped" in kinds else "passed"
    examples: dict[str, int] = {}
    node = None
    for line in proc.stdout.splitlines():
        if line.startswith("tests/") and line.rstrip().endswith(":"):
            node = line.rstrip()[:-1]
        elif node and (m := STATS.search(line)):
            examples[node] = examples.get(node, 0) + int(m.group(1)) + int(m.group(2))
    if proc.returncode not in (0, 1):
        print(proc.stdout[-3000:], proc.stderr[-3000:], file=sys.stderr)
    return outcomes, examples, seconds


def startup_sigint(module: str, delays: list[float], repeats: int = 3) -> list[tuple[float, str, int]]:
    """Ctrl-C at fixed delays after `python -m MODULE train` starts, `repeats` times each: (delay, the exit statuses
    seen, how many printed a traceback)."""
    rows = []
    for delay in delays:
        runs = [_sigint_once(module, delay) for _ in range(repeats)]
        codes = ", ".join(str(c) for c in sorted({c for c, _ in runs}))
        rows.append((delay, codes, sum(tb for _, tb in runs)))
    return rows


def _sigint_once(module: str, delay: float) -> tuple[int, bool]:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", module, "-q", "train", "--data", SMALL, "--epochs", "1",
               "--threads", "1", "--out", str(Path(tmp) / "ck")]  # fmt: skip
        proc = subprocess.Popen(
            cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint
        )
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        return proc.returncode, "Traceback" in err


def _window(module: str, rows: list[tuple[float, str, int]]) -> str:
    late = [d for d, _, tb in rows if tb]
    odd = [f"{d} s ({codes})" for d, codes, tb in rows if not tb and codes != "130" and late and d > max(late)]
    if not late:
        return f"`{module}`: no probe printed a traceback (the earliest was {rows[0][0]} s after the start)."
    tail = f"; later, no traceback but exit statuses other than 130 at {', '.join(odd)}" if odd else ""
    return f"`{module}`: a traceback up to {max(late)} s after the start (Python's own start-up on this machine){tail}."


def matching(outcomes: dict[str, str], prefixes: tuple[str, ...]) -> list[str]:
    return sorted(n for n in outcomes if n.startswith(prefixes))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", type=int, default=20, help="fuzz examples: this many times CI's (default 20)")
    ap.add_argument("--repeats", type=int, default=2, help="kills per interruption test (default 2)")
    ap.add_argument("--seed", type=int, default=20261128, help="hypothesis seed of the random fuzzing")
    ap.add_argument("--results", default=str(REPO / "benchmarks" / "results"))
    args = ap.parse_args()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        outcomes, examples, seconds = run_tests(args.scale, args.repeats, args.seed, Path(tmp) / "junit.xml")
    delays = [0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.5, 1.0]
    probes = {m: startup_sigint(m, delays) for m in ("edgerec.entry", "edgerec.cli.main")}

    fuzz_mode = "derandomized, as in CI" if args.scale == 1 else f"random, --hypothesis-seed={args.seed}"
    lines = [
        "# Robustness: bad input and interruptions",
        "",
        f"Machine: {machine()}; load average {load:.1f} at the start. Generated by {provenance()}: "
        f"the fuzz tests with {args.scale}x CI's examples "
        f"({fuzz_mode}), every interruption test {args.repeats} time(s) with seeds 0..{args.repeats - 1}; "
        f"pytest took {seconds / 60:.1f} min. Property of every fuzz test: a valid result, or one `EdgerecError` "
        "of one line (the CLI prints it and exits 2), never another exception type. Property of every "
        "interruption: the previous output byte-identical and loadable, no traceback and nothing left behind "
        "after Ctrl-C (exit 130), and a re-run completes.",
        "",
        "| entry point | bad input tried | tests passed | fuzz examples | interruptions survived | result |",
        "|---|---|---|---|---|---|",
    ]
    total_examples = total_kills = 0
    for e in ENTRIES:
        nodes = matching(outcomes, e.tests)
        passed = sum(outcomes[n] == "passed" for n in nodes)
        failed = sum(outcomes[n] == "failed" for n in nodes)
        n_examples = sum(v for k, v in examples.items() if k.startswith(e.tests))
        kills = passed if e.kills else 0
        total_examples += n_examples
        total_kills += kills
        result = "**FAIL**" if failed else ("not run" if not passed else "pass")
        lines.append(
            f"| {e.name} | {e.tried} | {passed}/{len(nodes)} | {n_examples or '-'} | {kills or '-'} | {result} |"
        )
    lines += [
        "",
        f"Totals: {total_examples:,} fuzz examples, {total_kills} interruptions survived, "
        f"{sum(v == 'passed' for v in outcomes.values())} of {len(outcomes)} tests passed "
        f"({sum(v == 'skipped' for v in outcomes.values())} skipped).",
        "",
        "## Ctrl-C during start-up",
        "",
        "SIGINT at fixed delays after the process starts, for the console script's entry point (`python -m "
        "edgerec.entry`: what `edgerec` runs; it imports the CLI inside its Ctrl-C guard) and for the CLI module "
        "run directly (`python -m edgerec.cli.main`, no guard around its own imports). Before the guard is reached "
        "(Python's own start-up: the interpreter, site-packages, `import edgerec.entry`) Python's default handler "
        "prints a KeyboardInterrupt traceback, and no Python code can change that; once inside, Ctrl-C prints one "
        "line and exits 130. Exit status -2: ended by SIGINT itself (a shell shows 130); 1: a KeyboardInterrupt "
        "traceback during Python's own imports. Three probes per delay.",
        "",
        "| delay (s) | `edgerec.entry`: exit statuses | tracebacks (of 3) | `edgerec.cli.main`: exit statuses | "
        "tracebacks (of 3) |",
        "|---|---|---|---|---|",
        *(
            f"| {d} | {c1} | {t1} | {c2} | {t2} |"
            for (d, c1, t1), (_, c2, t2) in zip(probes["edgerec.entry"], probes["edgerec.cli.main"], strict=True)
        ),
        "",
        _window("edgerec.entry", probes["edgerec.entry"]),
        "",
        "## Bugs found and fixed",
        "",
        "| commit | bug | regression test | now |",
        "|---|---|---|---|",
    ]
    for commit, bug, test in BUGS:
        lines.append(f"| {commit} | {bug} | `{test.split('::')[-1]}` | {outcomes.get(test, 'not run')} |")
    text = "\n".join(lines) + "\n"
    Path(args.results, "robustness.md").write_text(text)
    print(text)
    failed = [n for n, v in outcomes.items() if v == "failed"]
    if failed:
        print("failed:", *failed, sep="\n  ", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
