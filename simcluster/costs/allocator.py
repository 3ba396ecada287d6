"""PyTorch's CUDA caching allocator, as a small model: what a sequence of allocations reserves.

The rules are those of ``c10/cuda/CUDACachingAllocator.cpp`` (PyTorch 2.x, default settings: no
``max_split_size_mb``, no ``expandable_segments``):

- every request is rounded up to a multiple of 512 B (``kMinBlockSize``);
- requests of at most 1 MiB (``kSmallSize``) come from the small pool, whose segments are 2 MiB
  (``kSmallBuffer``); larger ones from the large pool, whose new segment is 20 MiB
  (``kLargeBuffer``) for requests under 10 MiB (``kMinLargeAlloc``) and otherwise the request
  rounded up to 2 MiB (``kRoundLarge``);
- a request takes the smallest free cached block of its pool and stream that fits (best fit,
  ties by address), split when the rest is at least 512 B (small pool) or more than 1 MiB (large
  pool); with none, a new segment is allocated (``cudaMalloc``);
- a freed block returns to its stream's pool, merged with free neighbours of its segment; segments
  are never returned to the device (only ``empty_cache`` or an out-of-memory retry does), so the
  reserved bytes only grow;
- blocks are per stream: a block freed on one stream is never reused by another;
- when the device has no room for a new segment (``cudaMalloc`` fails; here: the reserve would pass
  ``limit``), ``DeviceCachingAllocator::malloc`` first calls ``release_available_cached_blocks``, which
  does nothing without ``max_split_size_mb``, then ``release_cached_blocks``: it synchronizes the
  device (``synchronize_and_free_events``) and returns every cached block that is a whole segment
  (``release_blocks``: ``!block->prev && !block->next``) with ``cudaFree``, and tries once more
  (``alloc_block(params, true, ...)``, which counts ``num_alloc_retries``). A request that still does
  not fit is the out-of-memory error; the model then lets the reserve pass ``limit`` (the caller
  compares it with the device).

``reserved`` is then what ``torch.cuda.max_memory_reserved`` reports and ``allocated`` what
``max_memory_allocated`` reports (both peaks are kept).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from dataclasses import dataclass, field

MiB = 1024**2
MIN_BLOCK = 512  # kMinBlockSize: every request rounded up to a multiple of it
SMALL_SIZE = 1 * MiB  # kSmallSize: largest request of the small pool
SMALL_BUFFER = 2 * MiB  # kSmallBuffer: one small-pool segment
LARGE_BUFFER = 20 * MiB  # kLargeBuffer: the segment of a request between 1 and 10 MiB
MIN_LARGE_ALLOC = 10 * MiB  # kMinLargeAlloc: from here a segment is the request rounded to ROUND_LARGE
ROUND_LARGE = 2 * MiB  # kRoundLarge


def round_size(size: int) -> int:
    """A request's block size: at least 512 B, a multiple of 512 B."""
    return max(MIN_BLOCK, -(-size // MIN_BLOCK) * MIN_BLOCK)


def segment_size(size: int) -> int:
    """Bytes of the segment a (rounded) request allocates when no cached block fits."""
    if size <= SMALL_SIZE:
        return SMALL_BUFFER
    if size < MIN_LARGE_ALLOC:
        return LARGE_BUFFER
    return -(-size // ROUND_LARGE) * ROUND_LARGE


@dataclass
class _Block:
    segment: int
    addr: int
    size: int
    free: bool = True


@dataclass
class CachingAllocator:
    """The allocator's state: segments split into blocks, by (stream, pool)."""

    segments: dict[int, list[_Block]] = field(default_factory=dict)  # segment -> blocks by address
    pool_of: dict[int, tuple[str, bool]] = field(default_factory=dict)  # segment -> (stream, small)
    live: dict[object, _Block] = field(default_factory=dict)
    cached: dict[tuple[str, bool], list[tuple[int, int]]] = field(default_factory=dict)  # free (size, addr)
    by_addr: dict[int, _Block] = field(default_factory=dict)
    allocated: int = 0
    reserved: int = 0
    peak_allocated: int = 0
    peak_reserved: int = 0
    limit: int | None = None  # bytes the device leaves for segments (None: no limit)
    retries: int = 0  # cache flushes before a new segment (torch.cuda.memory_stats()["num_alloc_retries"])
    _next_addr: int = 0
    _next_segment: int = 0

    def malloc(self, key: object, size: float, stream: str = "default") -> None:
        """Allocate ``size`` bytes for ``key`` (a name the matching :meth:`free` gives) on ``stream``."""
        if key in self.live:
            raise ValueError(f"{key!r} is already allocated")
        want = round_size(int(size))
        small = want <= SMALL_SIZE
        pool = self.cached.setdefault((stream, small), [])
        i = bisect_left(pool, (want, -1))
        if i < len(pool):  # the smallest cached block that fits, the lowest address among equals
            best = self.by_addr[pool.pop(i)[1]]
        else:
            seg_bytes = segment_size(want)
            if self.limit is not None and self.reserved + seg_bytes > self.limit:
                self.release_cached()
                self.retries += 1
            seg = self._next_segment
            self._next_segment += 1
            best = _Block(seg, self._next_addr, seg_bytes)
            self._next_addr += seg_bytes
            self.segments[seg] = [best]
            self.by_addr[best.addr] = best
            self.pool_of[seg] = (stream, small)
            self.reserved += seg_bytes
        rest = best.size - want
        if rest >= MIN_BLOCK if small else rest > SMALL_SIZE:
            blocks = self.segments[best.segment]
            split = _Block(best.segment, best.addr + want, rest)
            blocks.insert(blocks.index(best) + 1, split)
            self.by_addr[split.addr] = split
            insort(pool, (rest, split.addr))
            best.size = want
        best.free = False
        self.live[key] = best
        self.allocated += best.size
        self.peak_allocated = max(self.peak_allocated, self.allocated)
        self.peak_reserved = max(self.peak_reserved, self.reserved)

    def release_cached(self) -> int:
        """Return every free block that is a whole segment to the device (``release_cached_blocks``); the bytes."""
        freed = 0
        for seg, blocks in list(self.segments.items()):
            if len(blocks) == 1 and blocks[0].free:
                b = blocks[0]
                self.cached[self.pool_of.pop(seg)].remove((b.size, b.addr))
                del self.by_addr[b.addr], self.segments[seg]
                freed += b.size
        self.reserved -= freed
        return freed

    def free(self, key: object) -> None:
        """Return ``key``'s block to its pool, merged with its free neighbours."""
        b = self.live.pop(key)
        self.allocated -= b.size
        b.free = True
        blocks = self.segments[b.segment]
        pool = self.cached[self.pool_of[b.segment]]
        i = blocks.index(b)
        if i + 1 < len(blocks) and blocks[i + 1].free:
            nxt = blocks.pop(i + 1)
            pool.remove((nxt.size, nxt.addr))
            del self.by_addr[nxt.addr]
            b.size += nxt.size
        if i > 0 and blocks[i - 1].free:
            prev = blocks[i - 1]
            pool.remove((prev.size, prev.addr))
            prev.size += b.size
            blocks.pop(i)
            del self.by_addr[b.addr]
            b = prev
        insort(pool, (b.size, b.addr))
