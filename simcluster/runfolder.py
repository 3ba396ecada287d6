"""Output folders: checked before any simulation, written whole or not at all.

- :func:`check_out_dir` refuses, before anything is simulated, an output folder that is a
  file, lies under a file, cannot be created or written, or whose path is too long
  (a :class:`~simcluster.errors.SpecError` naming ``--out``).
- :func:`staged` gives a run a temporary sibling folder (``.NAME.partial-XXXX``) to write
  into; when every file is written it puts the folder in place (one rename when the
  folder is new) and writes the completion marker :data:`MARKER` last. An exception or
  Ctrl-C removes the temporary folder: nothing partial is left that looks whole.
- :func:`incomplete_reason` says why a folder is not a finished run (no marker);
  ``report`` refuses such folders.
- :func:`inside` joins a name to a folder and checks the result stays inside it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from simcluster.errors import Problem, SpecError

#: Written last into a finished run folder: the files the run wrote (the only marker logic).
MARKER = "complete.json"
MAX_PATH = 4000  # Linux PATH_MAX is 4096
MAX_NAME = 255


def _fail(where: str, reason: str) -> SpecError:
    return SpecError([Problem(where, None, "", reason)])


def check_out_dir(out: str | Path, where: str = "--out") -> Path:
    """The absolute output folder ``out`` after checking it can hold a run; raises SpecError.

    Creates the folders above it (not ``out`` itself) and writes and removes a probe file
    there, so that a run that would fail to write fails now, before simulating.
    """
    text = str(out)
    if "\0" in text:
        raise _fail(where, "the path contains a NUL character")
    path = Path(os.path.abspath(text))
    if len(str(path)) > MAX_PATH or any(len(part) > MAX_NAME for part in path.parts):
        raise _fail(where, f"path too long ({len(str(path)):,} characters; at most {MAX_PATH:,}, "
                           f"{MAX_NAME} per name)")
    for above in [path, *path.parents]:
        if above.exists():
            if not above.is_dir():
                what = "is a file" if above == path else f"lies under {above}, which is a file"
                raise _fail(where, f"{text} {what}, not a folder")
            break
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name[:100]}.probe-")
        probe.close()
        if path.is_dir():
            tempfile.NamedTemporaryFile(dir=path, prefix=".probe-").close()
    except OSError as exc:
        raise _fail(where, f"cannot write in {path.parent}: {exc.strerror or exc}") from None
    return path


def inside(folder: Path, name: str, where: str) -> Path:
    """``folder / name`` resolved, checked to stay inside ``folder``; raises SpecError naming ``where``."""
    base = Path(os.path.abspath(folder))
    path = Path(os.path.abspath(base / name))
    if path == base or base not in path.parents:
        raise _fail(where, f"{name!r} would write outside {folder}")
    return path


def _listed(folder: Path) -> list[str]:
    """Files under ``folder``, relative, sorted."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() or p.is_symlink())


def mark_complete(folder: Path) -> None:
    """Write :data:`MARKER` into ``folder`` listing its files (call when everything else is written)."""
    files = [f for f in _listed(folder) if f != MARKER]
    tmp = folder / f".{MARKER}.tmp"
    tmp.write_text(json.dumps({"complete": True, "files": files}, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, folder / MARKER)


def incomplete_reason(folder: Path) -> str | None:
    """Why ``folder`` is not a finished run, or None when its marker says it is."""
    if not folder.is_dir():
        return "no such run folder"
    marker = folder / MARKER
    if not marker.is_file():
        return (f"not a finished run: no {MARKER} (the run was interrupted, failed, is still writing, or was "
                "written by an older simcluster); run it again")
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"{MARKER} is unreadable ({exc}); run it again"
    if not isinstance(data, dict) or data.get("complete") is not True:
        return f"{MARKER} does not say the run is complete; run it again"
    return None


def _old_files(out: Path) -> list[str]:
    """The files a previous run listed in ``out``'s marker (to remove those the new run does not write)."""
    try:
        data = json.loads((out / MARKER).read_text(encoding="utf-8"))
        return [str(f) for f in data.get("files", [])]
    except (OSError, ValueError, AttributeError):
        return []


def _publish(tmp: Path, out: Path) -> None:
    """Put the finished folder ``tmp`` at ``out`` (marker included)."""
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        os.rename(tmp, out)  # atomic; replaces an empty folder
        return
    old = _old_files(out)
    (out / MARKER).unlink(missing_ok=True)  # the folder is incomplete until the new marker lands
    new = _listed(tmp)
    for rel in sorted(set(old) - set(new)):
        stale = inside(out, rel, str(out))
        if stale.is_file():
            stale.unlink()
    for rel in [f for f in new if f != MARKER] + [MARKER]:
        dest = out / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp / rel, dest)
    shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def staged(out: Path) -> Iterator[Path]:
    """A temporary sibling of ``out`` to write a run into; see the module docstring."""
    out = Path(os.path.abspath(out))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name[:100]}.partial-", dir=out.parent))
    try:
        yield tmp
        mark_complete(tmp)
        _publish(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


#: Timeline columns ``report`` cannot draw without (the file may have more).
TIMELINE_NEEDS = ("resource", "stream", "kind", "start_s", "end_s")


def _timeline_columns(folder: Path) -> tuple[str, list[str]]:
    """``(file name, its columns)`` of the run's timeline; raises SpecError when there is none."""
    pq, csv = folder / "timeline.parquet", folder / "timeline.csv"
    try:
        if pq.is_file():
            import pyarrow.parquet as pa_pq

            return pq.name, list(pa_pq.read_schema(pq).names)
        if csv.is_file():
            import pandas as pd

            return csv.name, [str(c) for c in pd.read_csv(csv, nrows=0).columns]
    except ImportError:
        return pq.name, list(TIMELINE_NEEDS)  # cannot look inside without pyarrow: redraw will say
    except Exception as exc:  # noqa: BLE001 - any reader failure means a corrupt file
        raise _fail(str(folder), f"the timeline is unreadable ({type(exc).__name__}: {exc})") from None
    raise _fail(str(folder), "no timeline.parquet or timeline.csv")


def check_run_folder(folder: Path) -> None:
    """Raise SpecError unless ``folder`` is a finished run whose files ``report`` can read:
    the completion marker, JSON objects in summary.json (and config.json, details.json
    when present), a timeline with the columns of :data:`TIMELINE_NEEDS`."""
    where = str(folder)
    reason = incomplete_reason(folder)
    if reason:
        raise _fail(where, reason)
    for name, needed in (("summary.json", True), ("config.json", False), ("details.json", False)):
        path = folder / name
        if not path.is_file():
            if needed:
                raise _fail(where, f"not a finished run: no {name}")
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise _fail(where, f"{name} is not readable JSON ({exc})") from None
        if not isinstance(data, dict):
            raise _fail(where, f"{name} is not a JSON object (it holds a {type(data).__name__})")
    name, columns = _timeline_columns(folder)
    missing = [c for c in TIMELINE_NEEDS if c not in columns]
    if missing:
        raise _fail(where, f"{name} lacks the column{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
