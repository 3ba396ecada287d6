"""The Chakra wire format: length-delimited protobuf messages, and the codec of simcluster's own attributes.

An ``.et`` file is a ``GlobalMetadata`` message followed by ``Node`` messages, each
preceded by its length as a protobuf varint (Chakra's ``protolib.encodeMessage``).
Messages come from ``chakra.schema.protobuf.et_def_pb2`` (package ``mlc-chakra``).

simcluster keeps what Chakra's schema has no field for (streams, phases, planned
transfers, fused parts, the workload) in attributes named ``sc.*`` whose values are JSON
strings written by :func:`to_plain`: floats in their shortest round-trip form, tuples,
dicts with non-string keys and the dataclasses of a task graph tagged so that
:func:`from_plain` gives back equal objects.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, BinaryIO, Iterator

from chakra.schema.protobuf import et_def_pb2 as pb  # noqa: F401  (ImportError: the extra is missing)

from simcluster.collectives.transfer import Transfer
from simcluster.lowering.task import Part, Task

CHAKRA_VERSION = "0.0.4"
SCHEMA = "simcluster-chakra/1"
DATACLASSES = {c.__name__: c for c in (Task, Part, Transfer)}


def write_message(f: BinaryIO, msg: Any) -> None:
    """Append ``msg`` with its varint length prefix."""
    data = msg.SerializeToString(deterministic=True)
    n = len(data)
    head = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        head.append(b | (0x80 if n else 0))
        if not n:
            break
    f.write(bytes(head) + data)


def read_messages(data: bytes) -> Iterator[bytes]:
    """The length-delimited message payloads of a file's bytes."""
    pos = 0
    while pos < len(data):
        n = shift = 0
        while True:
            if pos >= len(data):
                raise ValueError("truncated varint")
            b = data[pos]
            pos += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        if pos + n > len(data):
            raise ValueError("truncated message")
        yield data[pos : pos + n]
        pos += n


def to_plain(obj: Any) -> Any:
    """``obj`` as JSON-ready values, with tags that :func:`from_plain` undoes."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {"__dc__": type(obj).__name__,
                **{f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}}
    if isinstance(obj, tuple):
        return {"__t__": [to_plain(v) for v in obj]}
    if isinstance(obj, list):
        return [to_plain(v) for v in obj]
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: to_plain(v) for k, v in obj.items()}
        return {"__d__": [[to_plain(k), to_plain(v)] for k, v in obj.items()]}
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return obj.item()
    return obj


def from_plain(obj: Any) -> Any:
    """Undo :func:`to_plain`."""
    if isinstance(obj, list):
        return [from_plain(v) for v in obj]
    if isinstance(obj, dict):
        if "__t__" in obj:
            return tuple(from_plain(v) for v in obj["__t__"])
        if "__d__" in obj:
            return {from_plain(k): from_plain(v) for k, v in obj["__d__"]}
        if "__dc__" in obj:
            cls = DATACLASSES[obj["__dc__"]]
            return cls(**{k: from_plain(v) for k, v in obj.items() if k != "__dc__"})
        return {k: from_plain(v) for k, v in obj.items()}
    return obj


def dumps(obj: Any) -> str:
    """Compact JSON of :func:`to_plain` (``repr`` floats: exact)."""
    return json.dumps(to_plain(obj), separators=(",", ":"), sort_keys=False)


def loads(text: str) -> Any:
    """Undo :func:`dumps`."""
    return from_plain(json.loads(text))


def attr(name: str, value: Any) -> Any:
    """An ``AttributeProto``: bool, int (int64), float (double), str, or a list of ints."""
    a = pb.AttributeProto(name=name)
    if isinstance(value, bool):
        a.bool_val = value
    elif isinstance(value, int):
        a.int64_val = value
    elif isinstance(value, float):
        a.double_val = value
    elif isinstance(value, str):
        a.string_val = value
    elif isinstance(value, (list, tuple)):
        a.int64_list.values.extend(int(v) for v in value)
    else:
        raise TypeError(f"attribute {name}: unsupported value {value!r}")
    return a


def attrs_of(msg: Any) -> dict[str, Any]:
    """``{name: value}`` of a message's attributes (whichever oneof field is set)."""
    out = {}
    for a in msg.attr:
        field = a.WhichOneof("value")
        if field is None:
            continue
        v = getattr(a, field)
        out[a.name] = list(v.values) if field.endswith("_list") else v
    return out
