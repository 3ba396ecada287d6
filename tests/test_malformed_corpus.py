"""Issue 19: a generated corpus of malformed inputs through ``validate``, in-process.

Every file is a shipped workload, cluster or sweep with one seeded mutation (see
tests/malformed.py), or one of the structural cases (alias bombs, self-references, deep
nesting, huge literals, binary files, 20,000 unknown keys). Each must give exit 2 with one
line per problem that starts with a file (and line) and names the key, or exit 0 when
the mutation left it valid; no exception may escape, and no file may take more than a
few seconds. ``SIMCLUSTER_CORPUS=N`` changes the number of mutated files (default 1,000).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import resource
import time
from collections import Counter
from pathlib import Path

import pytest

from malformed import Case, corpus
from simcluster.cli import main

N_FILES = int(os.environ.get("SIMCLUSTER_CORPUS", "1000"))
PER_FILE_S = 5.0
#: A problem line: FILE[:LINE]: ... (the file given, the base workload or preset it names, or --set).
LINE = re.compile(r"^(?P<file>[^:]+?)(:\d+)?: ")


def _validate(path: Path) -> tuple[int, str, float]:
    out, err = io.StringIO(), io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["validate", str(path)])
    return rc, err.getvalue(), time.perf_counter() - start


def _check(case: Case, path: Path, rc: int, err: str) -> str | None:
    """Why the outcome of one file is wrong, or None."""
    if rc not in (0, 2):
        return f"exit {rc}"
    if rc == 0:
        return None if not err else "exit 0 with messages"
    lines = err.splitlines()
    if not lines:
        return "exit 2 with no message"
    for line in lines:
        if line.startswith("... and "):
            continue
        m = LINE.match(line)
        if m is None or not (m["file"] == str(path) or m["file"].endswith(".yaml") or m["file"] == "--set"):
            return f"not a problem line: {line[:200]!r}"
    if case.key:
        name = next((p for p in reversed(case.key.split(".")) if not p.isdigit()), case.key)
        if name.lower() not in err.lower():
            return f"does not name {case.key}: {lines[0][:200]!r}"
    return None


def test_malformed_corpus(tmp_path):
    outcomes: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    failures, slow = [], []
    start = time.perf_counter()
    for case in corpus(N_FILES):
        path = tmp_path / case.name
        path.write_bytes(case.data)
        try:
            rc, err, took = _validate(path)
        except BaseException as exc:  # noqa: BLE001 - what the test is about
            failures.append(f"{case.name}: {type(exc).__name__}: {exc}"[:300])
            continue
        why = _check(case, path, rc, err)
        if why:
            failures.append(f"{case.name} ({case.kind}, key {case.key or '-'}): {why}")
        if took > PER_FILE_S:
            slow.append(f"{case.name}: {took:.1f} s")
        outcomes[str(rc)] += 1
        kinds[case.kind] += 1
    total = sum(outcomes.values())
    wall = time.perf_counter() - start
    print(f"\n{total} files in {wall:.1f} s: exit codes {dict(outcomes)}; mutations {dict(kinds)}")
    assert total >= N_FILES, f"only {total} files checked"
    assert not failures, f"{len(failures)} of {total} files misreported:\n" + "\n".join(failures[:40])
    assert not slow, "files over the per-file time bound:\n" + "\n".join(slow)
    assert outcomes["2"] > 0.7 * total  # most mutations break the file
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    assert peak_mb < 2048, f"the test process reached {peak_mb:.0f} MB"


@pytest.mark.parametrize("name", ["alias-bomb.yaml", "alias-bomb-sweep.yaml", "self-alias.yaml", "deep-lists.yaml",
                                  "not-filter.yaml", "huge-int.yaml", "int-four.yaml", "nul.yaml", "binary.yaml",
                                  "unknown-20k.yaml", "name-path.yaml", "fabric-none-fat-tree.yaml",
                                  "fabric-torus-fat-tree.yaml"])
def test_structural_case_is_reported_quickly(tmp_path, name):
    """The classes of issue 19 one by one: exit 2, one located line per problem, in seconds."""
    from malformed import structural

    case = next(c for c in structural() if c.name == name)
    path = tmp_path / name
    path.write_bytes(case.data)
    rc, err, took = _validate(path)
    assert rc == 2, err
    assert _check(case, path, rc, err) is None, err
    assert "Traceback" not in err
    assert took < 3.0
    assert len(err.splitlines()) <= 51  # at most 50 problems and the "... and N more" line
