"""What the CUDA caching allocator reserves beyond the tensors: one stage's step replayed through it.

:func:`simcluster.costs.memory.stage_memory` gives the tensors' peak (``torch.cuda.max_memory_allocated``
plus the workspaces). The process holds more: the allocator keeps every segment it ever allocated and
splits them for later requests (:mod:`simcluster.costs.allocator`), so a large request that finds
only fragments of cached segments allocates a new one. :func:`replay_reserve` replays the
allocations and frees the memory model implies for three training steps of one GPU of the stage
(the allocator's state carries over from step to step, as in a run) and returns
``peak reserved − peak allocated`` of the replay, the bytes :func:`reserved_bytes` adds to the peak.

The sequence (sizes from :mod:`simcluster.costs.memory`; t tensor, z the ZeRO shard):

- at start: each layer's weights as its matrices (4 attention + 2 or 3 MLP, equal shares of the
  layer's parameters), the embedding and output; the gradients as one contiguous buffer (Megatron's
  and DeepSpeed's grad buffers), except under ``pytorch``, whose ``zero_grad`` sets them to None and
  whose backward allocates them per layer again every step (:func:`simcluster.costs.model_states.lazy_gradients`);
- every microbatch in flight, forward: per layer, ZeRO-3's gathered weights (the gather buffer on its
  own stream: FSDP2's all-gather output lives on the all-gather stream, PyTorch FSDP2
  ``_fsdp_collectives.py``), the layer's saved activations, and what the layer computes but does not
  keep (its activations without recompute less the saved ones), in tensors of one
  [s, b, h] activation each (at most :data:`PIECES`), freed at the layer's end; the last stage's loss
  tensors, one per 4 bytes of each logit;
- backward, microbatches and layers in reverse: the loss's transient tensors, then per layer the
  gathered weights and their 16-bit gradient, the recomputed activations (full recompute), the layer's
  saved activations freed, ZeRO-3's reduce-scatter input on its stream (fp32 under ``pytorch``:
  ``reduce_dtype``), and the lazy gradients;
- the optimizer: its states at the first step (``torch.optim`` and Apex's FusedAdam create ``exp_avg``
  and ``exp_avg_sq`` lazily, in the step), one tensor per 4 bytes per parameter and matrix, and under
  ``pytorch``'s foreach Adam the ``torch._foreach_sqrt`` of ``exp_avg_sq`` (4 B per parameter) alive
  until the update ends (``torch/optim/adamw.py``, ``_multi_tensor_adamw``).

The moments are the memory model's, but the tensors are coarser than a real step's (a layer's
transient tensors are allocated together, equal matrices): the reserve is an estimate of the
mechanism, not a replay of the kernels.

A device short of room. The reserve cannot pass the device: when the replay's segments would need more
than the memory left beside the stage's tensors and workspaces, the allocator flushes its cache instead
(``release_cached_blocks`` after a device sync, then ``cudaMalloc`` again; PyTorch counts each as
``num_alloc_retries``): :func:`replay_reserve` replays the step with that limit and returns the bounded
reserve and the flushes per step. Their time (the device sync, ``cudaFree`` of the cached segments and
the ``cudaMalloc`` calls that grow the cache again) is not simulated: the run says so
(:mod:`simcluster.metrics.summary`).
"""

from __future__ import annotations

from dataclasses import dataclass

from simcluster.costs import params as P
from simcluster.costs.allocator import CachingAllocator
from simcluster.costs.frameworks import framework
from simcluster.costs.deepspeed_zero3 import live_gathered_params
from simcluster.costs.memory import (activation_bytes_per_layer, loss_stack, loss_transient_bytes,
                                     stage_extra_activation_bytes)
from simcluster.costs.model_states import fsdp2, held_bytes_per_param, zero_shard
from simcluster.spec.parallelism import ParallelismSpec
from simcluster.spec.training import TrainingSpec
from simcluster.spec.workload import ModelSpec
from simcluster.workload.ops import DTYPE_BYTES

PIECES = 8  # most tensors a layer's transient activations are allocated as (one [s, b, h] each otherwise)
STEPS = 3  # training steps replayed: the first allocates the optimizer states, the later ones see its fragments


def _split(total: float, unit: float, most: int = PIECES) -> list[float]:
    """``total`` bytes as equal tensors of about ``unit`` bytes each, at most ``most`` of them."""
    if total <= 0:
        return []
    k = max(1, min(most, round(total / unit))) if unit > 0 else 1
    return [total / k] * k


class _Step:
    """The allocation sequence of one stage (module docstring), run on an allocator."""

    def __init__(self, model: ModelSpec, training: TrainingSpec, parallelism: ParallelismSpec, layers: int,
                 has_embedding: bool, has_logits: bool, in_flight: int, recomputed: int | None = None):
        self.a = CachingAllocator()
        t = parallelism.tensor
        self.layers, self.in_flight = layers, in_flight
        self.has_embedding, self.has_logits = has_embedding, has_logits
        w_b, g_b, o_b, cast, gathered = held_bytes_per_param(training, parallelism)
        zero = parallelism.zero_stage
        shard = zero_shard(parallelism)
        self.zero3 = zero >= 3
        self.lazy = training.framework == "pytorch"
        self.fsdp2 = fsdp2(training, parallelism)
        layer_params = P.layer_params(model, t)
        self.mats = 4 + P.mlp_matrices(model)
        self.mat_params = layer_params / self.mats
        self.w_mat = self.mat_params * (w_b + cast) / (shard if self.zero3 else 1)
        self.g_layer = layer_params * g_b / (shard if zero >= 2 else 1)
        self.o_pieces = max(1, round(o_b / 4))
        self.o_mat = self.mat_params * o_b / self.o_pieces / (shard if zero >= 1 else 1)
        # what one ZeRO-3 gather holds: a layer, or under DeepSpeed its largest module (costs.deepspeed_zero3)
        unit = live_gathered_params(model, training, t) if framework(training.framework).zero3_fetch == "module" \
            else layer_params
        self.gathered = unit * gathered
        self.reduce = unit * (4 if self.fsdp2 else gathered)
        self.o_shard = shard if zero >= 1 else 1
        root = (P.embedding_params(model, t) if has_embedding else 0.0) + \
            (P.output_params(model, t, shares_embedding_stage=has_embedding) if has_logits else 0.0)
        self.root_w = root * (w_b + cast) / (shard if self.zero3 else 1)
        self.root_g = root * g_b / (shard if zero >= 2 else 1)
        self.root_gathered = root * gathered
        self.foreach = framework(training.framework, zero).optimizer == "foreach" and training.optimizer == "adam"
        v = DTYPE_BYTES[training.precision]
        sbh = model.seq_len / parallelism.context * training.micro_batch * model.hidden
        self.unit = v * sbh  # one [s, b, h] activation
        saved = activation_bytes_per_layer(model, training, parallelism)
        full = activation_bytes_per_layer(model, training, parallelism, recompute="none")
        # partial recompute (costs.partial_recompute): the first ``recomputed`` layers as recomputed, the rest kept
        rc = layers if recomputed is None else min(recomputed, layers)
        self.saved = [saved if l < rc else full for l in range(layers)]
        self.recompute = [full if training.recompute == "full" and l < rc else 0.0 for l in range(layers)]
        self.transient = [max(0.0, full - x) for x in self.saved]
        self.emb = stage_extra_activation_bytes(model, training, parallelism, has_embedding=has_embedding,
                                                has_logits=False)
        logits = stage_extra_activation_bytes(model, training, parallelism, has_embedding=False,
                                              has_logits=has_logits) if has_logits else 0.0
        sbv = model.seq_len / parallelism.context * training.micro_batch * model.vocab / t
        per_logit = loss_stack(training).loss_saved_bytes
        self.loss_saved = _split(logits, 4 * sbv, most=64) if has_logits else []
        self.loss_transient = _split(loss_transient_bytes(model, training, parallelism), 4 * sbv, most=64) \
            if has_logits and per_logit else []

    def run(self, limit: int | None = None) -> tuple[CachingAllocator, int]:
        """The replayed allocator, and its cache flushes in the last step (the steady state) when the
        segments may not pass ``limit`` bytes."""
        a = self.a
        a.limit = limit
        for l in range(self.layers):
            for j in range(self.mats):
                a.malloc(("w", l, j), self.w_mat)
        if self.root_w:
            a.malloc(("w", "root"), self.root_w)
        if not self.lazy and (self.layers or self.root_g):
            a.malloc(("g", "all"), self.layers * self.g_layer + self.root_g)
        before = 0
        for step in range(STEPS):
            before = a.retries
            self._step(step)
        return a, a.retries - before

    def _group(self, tag: object, sizes: list[float], keep: bool = False) -> None:
        for i, size in enumerate(sizes):
            self.a.malloc((tag, i), size)
        if not keep:
            for i in range(len(sizes)):
                self.a.free((tag, i))

    def _gather(self, l: int) -> None:
        if self.zero3 and ("u", l) not in self.a.live:
            self.a.malloc(("ag", l), self.gathered, "all-gather")
            self.a.malloc(("u", l), self.gathered)
            self.a.free(("ag", l))

    def _step(self, step: int) -> None:
        a = self.a
        if self.lazy:  # zero_grad(set_to_none=True)
            for key in [k for k in a.live if isinstance(k, tuple) and k[0] == "g"]:
                a.free(key)
        if self.zero3 and self.fsdp2 and self.root_gathered:
            a.malloc(("u", "root"), self.root_gathered)
        for mb in range(self.in_flight):
            if self.emb:
                a.malloc(("e", mb), self.emb)
            for l in range(self.layers):
                self._gather(l)
                a.malloc(("s", mb, l), self.saved[l])
                self._group(("t", mb, l), _split(self.transient[l], self.unit))
                if self.zero3 and not (self.fsdp2 and l == self.layers - 1):  # torchtitan keeps the last layer
                    a.free(("u", l))
            self._group(("loss", mb), self.loss_saved, keep=True)
        for mb in reversed(range(self.in_flight)):
            if self.loss_saved:
                self._group(("lt", mb), self.loss_transient)
                for i in range(len(self.loss_saved)):
                    a.free((("loss", mb), i))
            for l in reversed(range(self.layers)):
                self._gather(l)
                if self.zero3:
                    a.malloc(("ug", l), self.gathered)
                self._group(("r", mb, l), _split(self.recompute[l], self.unit))
                a.free(("s", mb, l))
                if self.zero3:
                    a.free(("u", l))
                    a.malloc(("rs", l), self.reduce, "reduce-scatter")
                    a.free(("ug", l))
                    a.free(("rs", l))
                if self.lazy and ("g", l) not in a.live:
                    a.malloc(("g", l), self.g_layer)
            if self.emb:
                a.free(("e", mb))
        if ("u", "root") in a.live:
            a.free(("u", "root"))
        if self.lazy and self.root_g:
            a.malloc(("g", "root"), self.root_g)
        if step == 0:
            for l in range(self.layers):
                for j in range(self.mats):
                    for k in range(self.o_pieces):
                        a.malloc(("o", l, j, k), self.o_mat)
        if self.foreach:
            sqrt = 4 * self.mat_params / self.o_shard
            self._group("sqrt", [sqrt] * (self.layers * self.mats))


@dataclass(frozen=True)
class Reserve:
    """What the caching allocator holds beyond the tensors' peak on one GPU, and how often it flushes its cache."""

    bytes: float  # peak reserved − peak allocated of the replay
    retries_per_step: int  # cache flushes a step (``num_alloc_retries``): 0 unless the device is short


#: by the specs' JSON and the stage (the specs are not hashable): the unbounded replay (its reserve and tensor peak),
#: and the bounded replays by headroom as well
_FREE: dict[tuple[object, ...], tuple[Reserve, int]] = {}
_BOUNDED: dict[tuple[object, ...], Reserve] = {}


def replay_reserve(model: ModelSpec, training: TrainingSpec, parallelism: ParallelismSpec, *, layers_on_stage: int,
                   has_embedding: bool, has_logits: bool, microbatches_in_flight: int,
                   recomputed_on_stage: int | None = None, headroom: float | None = None) -> Reserve:
    """The caching allocator's reserve beyond the tensors' peak on one GPU of the stage (module docstring).

    ``headroom``: the device's bytes beside the stage's peak (capacity − the memory model's total; None: unbounded).
    When the unbounded reserve is larger, the device could not give the allocator those segments: the step is
    replayed again with the segments limited to the replay's tensor peak + ``headroom``, so that each request that
    finds no cached block and no room flushes the cache first (:class:`simcluster.costs.allocator.CachingAllocator`,
    ``release_cached_blocks``), and the reserve is what that run holds, with its flushes per step. With
    ``headroom`` ≤ 0 the tensors alone do not fit (an out-of-memory error): the unbounded reserve, no flushes.
    """
    args = (model, training, parallelism, layers_on_stage, has_embedding, has_logits, microbatches_in_flight,
            recomputed_on_stage)
    key = (model.model_dump_json(), training.model_dump_json(), parallelism.model_dump_json(), *args[3:])
    for cache in (_FREE, _BOUNDED):
        if len(cache) > 4096:
            cache.clear()
    if key not in _FREE:
        a, _ = _Step(*args).run()
        _FREE[key] = Reserve(float(a.peak_reserved - a.peak_allocated), 0), a.peak_allocated
    free, tensors = _FREE[key]
    room = None if headroom is None else int(headroom)
    if room is None or not 0 < room < free.bytes:
        return free
    if (key, room) not in _BOUNDED:
        a, flushes = _Step(*args).run(limit=tensors + room)
        _BOUNDED[key, room] = Reserve(float(max(0, a.peak_reserved - a.peak_allocated)), flushes)
    return _BOUNDED[key, room]
