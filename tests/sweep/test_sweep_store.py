"""The durable store: one fsync'd JSON line per point, torn lines dropped, one writer, keys."""

from __future__ import annotations

import copy

import pytest

from sweep_helpers import small_sweep
from simcluster.sweep.store import Store, StoreBusy, config_key, invalid_key


def record(key, status="ok", **extra):
    return {"key": key, "status": status, "message": "", "summary": {"tokens_per_s": 1.5}, "wall_s": 0.1, **extra}


def test_append_and_reopen(tmp_path):
    path = tmp_path / "points.jsonl"
    with Store(path) as store:
        assert store.open() == {}
        store.append(record("a"))
        store.append(record("b", "invalid"))
    assert path.read_text().count("\n") == 2
    with Store(path) as store:
        assert set(store.open()) == {"a", "b"}
        store.append(record("c"))
    assert Store(path).load()["c"]["summary"] == {"tokens_per_s": 1.5}


def test_a_torn_last_line_is_dropped(tmp_path):
    path = tmp_path / "points.jsonl"
    with Store(path) as store:
        store.open()
        store.append(record("a"))
    with path.open("ab") as f:
        f.write(b'{"key": "b", "status": "o')  # a crash in the middle of a write
    assert set(Store(path).load()) == {"a"}
    with Store(path) as store:
        assert set(store.open()) == {"a"}  # and the torn bytes are cut off before appending
        store.append(record("c"))
    assert set(Store(path).load()) == {"a", "c"}
    assert path.read_bytes().count(b"\n") == 2


def test_one_writer_at_a_time(tmp_path):
    path = tmp_path / "points.jsonl"
    with Store(path) as first:
        first.open()
        with pytest.raises(StoreBusy):
            Store(path).open()
    with Store(path) as again:  # released on close
        again.open()


def test_config_key_ignores_provenance_only(tmp_path):
    sweep = small_sweep(tmp_path)
    resolved = sweep.workload({"parallelism.tensor": 2, "training.micro_batch": 2}).resolved_dict()
    renamed = copy.deepcopy(resolved)
    renamed.update(name="other", source="elsewhere.yaml")
    renamed["cluster"]["source"] = "x.yaml"
    assert config_key(renamed) == config_key(resolved)
    changed = copy.deepcopy(resolved)
    changed["training"]["micro_batch"] = 4
    assert config_key(changed) != config_key(resolved)
    assert invalid_key({"a": 1}) == invalid_key({"a": 1}) != invalid_key({"a": 2})
