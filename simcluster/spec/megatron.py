"""A Megatron-LM command line as a workload: ``simcluster import-megatron ARGS.txt``.

The text holds ``pretrain_gpt.py``'s arguments (a launch line or a script's argument block:
backslash line ends, ``#`` comments and the launcher's own words are fine). What is mapped:

=========================================================  ===========================================
Megatron-LM                                                workload
=========================================================  ===========================================
--num-layers, --hidden-size, --num-attention-heads         model.layers, hidden, heads
--num-query-groups (with --group-query-attention)          model.kv_heads
--ffn-hidden-size, --kv-channels                           model.ffn_hidden, head_dim
--seq-length (else --max-position-embeddings)              model.seq_len
--padded-vocab-size / --vocab-size                         model.vocab (--vocab-size padded as Megatron
                                                           does: to --make-vocab-size-divisible-by ×
                                                           tensor); neither: GPT-2's 50257, padded, with
                                                           --tokenizer-type GPT2BPETokenizer or none; any
                                                           other tokenizer is a problem (its file sets the
                                                           size) unless ``--set model.vocab`` gives it
--swiglu, --untie-embeddings-and-output-weights            model.mlp swiglu, tied_embeddings false
--qk-layernorm                                             model.qk_norm
--tensor-/--pipeline-model-parallel-size,                  parallelism.tensor, pipeline, context
--context-parallel-size
--num-layers-per-virtual-pipeline-stage N                  virtual_stages = layers / (pipeline × N),
                                                           schedule interleaved
--pipeline-model-parallel-layout "Et|(tt|)*30mL"           stage_layers (decoder layers per model chunk),
                                                           virtual_stages = chunks / pipeline
--sequence-parallel, --use-distributed-optimizer           sequence_parallel, zero_stage 1
--DDP-impl torch|local, --overlap-grad-reduce              overlap_grad_reduce (local, or neither: false)
--no-overlap-p2p-communication                             parallelism.overlap_p2p_comm false (else the
                                                           default: overlapped in the interleaved schedule)
--recompute-granularity full|selective,                    training.recompute (--recompute-method alone
--recompute-activations (selective),                       and the 2021 --checkpoint-activations: full)
--checkpoint-activations (full)
--recompute-method block --recompute-num-layers N          training.recompute_num_layers N (uniform: every
                                                           layer, as full)
--recompute-modules M ... (with selective)                 training.recompute_modules [M, ...] (core_attn,
                                                           layernorm, moe_act, mlp, moe, shared_experts,
                                                           mla_up_proj)
--moe-layer-recompute (deprecated)                         selective, moe added to the modules
--micro-batch-size, --global-batch-size                    training.micro_batch, global_batch
--bf16 / --fp16 (else fp32), --optimizer adam|sgd          training.precision, optimizer
--use-flash-attn, --attention-backend flash|fused|auto     training.flash_attention (else false)
--no-gradient-accumulation-fusion                          training.gradient_accumulation_fusion false
--grad-reduce-in-bf16                                      training.grad_reduce_in_bf16
--no-async-tensor-model-parallel-allreduce                 parallelism.tp_grad_overlap false
--overlap-param-gather                                     parallelism.overlap_param_gather
--defer-embedding-wgrad-compute, --wgrad-deferral-limit    parallelism.defer_embedding_wgrad_compute,
                                                           wgrad_deferral_limit
experts, latent attention, MTP, FP8 (--num-experts,        model.moe, attention mla, mla, mtp_layers;
--moe-*, --multi-latent-attention, --mtp-num-layers,       training.precision fp8, fp8_recipe;
--fp8-*, --expert-*-parallel-size)                         parallelism.expert, expert_tensor:
                                                           :mod:`simcluster.spec.megatron_moe`
--window-size, --window-attn-skip-freq                     model.sliding_window, full_attention_every:
                                                           :mod:`simcluster.spec.megatron_window`
=========================================================  ===========================================

The number of GPUs is not among Megatron's arguments: it comes from ``gpus`` (or ``nodes``) of
:func:`megatron_workload`, or from a ``torchrun``/``srun`` line in the text (``--nnodes``,
``--nproc_per_node``). Arguments that change the cost but cannot be mapped (``--softmax-type`` sinks, the
``--moe-*`` arguments :mod:`simcluster.spec.megatron_moe` does not map, other projects' MoE and MLA
arguments) are problems that name them; the rest (learning rate, data paths, logging, ...) are
listed in the file's header as ignored.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import yaml

from simcluster.errors import Problem, SpecError
from simcluster.spec import megatron_moe, megatron_window
from simcluster.spec.pipeline_layout import stage_layers_of

#: Arguments that change what would be simulated but have no workload key yet (those of them that
#: :mod:`simcluster.spec.megatron_moe` maps or knows to cost nothing excepted): Megatron-Core's own, and the MoE
#: and latent-attention arguments of other projects' Megatron forks.
UNSUPPORTED_PREFIXES = ("--moe-", "--fp8", "--no-fp8", "--window-", "--softmax-type",
                        "--first-k-dense-replace", "--n-shared-experts", "--multi-head-latent-attention", "--mla-")
#: Megatron's default --make-vocab-size-divisible-by; GPT-2's BPE vocabulary (the 2021 scripts' --vocab-file).
DIVISIBLE_BY = 128
GPT2_VOCAB = 50257
#: ``--tokenizer-type`` values whose vocabulary is GPT-2's (Megatron-LM's default tokenizer). Any other (a
#: SentencePiece, Hugging Face or tiktoken model) has the size of its own file: given by --vocab-size or refused.
GPT2_TOKENIZERS = frozenset({"GPT2BPETokenizer"})

_FLAGS = frozenset({"--sequence-parallel", "--use-distributed-optimizer", "--bf16", "--fp16", "--swiglu",
                    "--untie-embeddings-and-output-weights", "--use-flash-attn", "--recompute-activations",
                    "--checkpoint-activations", "--overlap-grad-reduce", "--group-query-attention",
                    "--no-overlap-p2p-communication", "--overlap-p2p-communication",
                    "--no-gradient-accumulation-fusion", "--no-async-tensor-model-parallel-allreduce",
                    "--overlap-param-gather", "--defer-embedding-wgrad-compute", "--grad-reduce-in-bf16",
                    "--qk-layernorm"}) | megatron_moe.FLAGS

#: Arguments that take several values (Megatron-Core's ``nargs='*'``): kept as one space-separated string.
_LISTS = frozenset({"--recompute-modules"})

#: Megatron-Core's --attention-backend values that run a fused (flash or cuDNN) attention kernel; unfused and local
#: run the unfused softmax path. Neither flag: the unfused path (the 2021-2023 scripts' default).
_FLASH_BACKENDS = frozenset({"flash", "fused", "auto"})


def parse_args(text: str) -> dict[str, str | bool]:
    """``--key value`` and ``--flag`` pairs of a command line (the last occurrence wins);
    ``--key=value`` accepted; words that are not options (the program, paths) skipped."""
    text = re.sub(r"\\\r?\n", " ", text)
    try:
        words = shlex.split(text, comments=True)
    except ValueError as exc:
        raise SpecError([Problem("import-megatron", None, "", f"cannot split the command line: {exc}")]) from None
    out: dict[str, str | bool] = {}
    i = 0
    while i < len(words):
        word = words[i]
        if word.startswith("--"):
            key, eq, value = word.partition("=")
            key = key.replace("_", "-") if not key.startswith("--DDP") else key
            if eq:
                out[key] = value
            elif key in _LISTS:  # every word up to the next option, space-separated
                j = i + 1
                while j < len(words) and not words[j].startswith("--"):
                    j += 1
                out[key] = " ".join(words[i + 1:j])
                i = j - 1
            elif key in _FLAGS or i + 1 >= len(words) or words[i + 1].startswith("--"):
                out[key] = True
            else:
                out[key] = words[i + 1]
                i += 1
        i += 1
    return out


def _int(args: dict[str, str | bool], key: str, file: str, problems: list[Problem]) -> int | None:
    value = args.get(key)
    if value is None:
        return None
    try:
        return int(str(value))
    except ValueError:
        problems.append(Problem(file, None, key, f"expected an integer, got {value!r}"))
        return None


def megatron_workload(text: str, *, file: str = "<args>", name: str | None = None, gpus: int | None = None,
                      nodes: int | None = None, cluster: str = "dgx-a100-80gb",
                      vocab_given: bool = False) -> tuple[dict[str, Any], list[str]]:
    """The workload mapping of a Megatron-LM command line, and the arguments it ignored;
    raises SpecError naming what cannot be mapped or is missing. ``vocab_given``: the caller sets
    ``model.vocab`` itself (``--set``), so a tokenizer whose size the arguments do not give is no problem."""
    args = parse_args(text)
    problems: list[Problem] = []
    unsupported = sorted(k for k in args if k.startswith(UNSUPPORTED_PREFIXES)
                         and k not in megatron_moe.MAPPED | megatron_moe.NO_COST | megatron_window.MAPPED)
    if unsupported:
        problems.append(Problem(file, None, "", "Megatron-LM arguments that cannot be mapped onto a workload: "
                                + ", ".join(unsupported) + " (simcluster/spec/megatron_moe.py lists what is mapped; "
                                "megatron_window.py what windows it maps; write the model section by hand)"))
    ints = {k: _int(args, k, file, problems) for k in (
        "--num-layers", "--hidden-size", "--num-attention-heads", "--num-query-groups", "--ffn-hidden-size",
        "--kv-channels", "--seq-length", "--max-position-embeddings", "--padded-vocab-size", "--vocab-size",
        "--make-vocab-size-divisible-by", "--tensor-model-parallel-size", "--pipeline-model-parallel-size",
        "--context-parallel-size", "--num-layers-per-virtual-pipeline-stage", "--micro-batch-size",
        "--global-batch-size", "--nnodes", "--nproc-per-node", "--wgrad-deferral-limit", "--recompute-num-layers",
        *megatron_moe.INT_ARGS)}
    for key in ("--num-layers", "--hidden-size", "--num-attention-heads", "--global-batch-size"):
        if ints[key] is None and key not in args:
            problems.append(Problem(file, None, key, "missing: needed to describe the workload"))
    seq = ints["--seq-length"] or ints["--max-position-embeddings"]
    if seq is None:
        problems.append(Problem(file, None, "--seq-length", "missing (and no --max-position-embeddings)"))
    tokenizer = args.get("--tokenizer-type")
    if (isinstance(tokenizer, str) and tokenizer not in GPT2_TOKENIZERS and not vocab_given
            and ints["--padded-vocab-size"] is None and ints["--vocab-size"] is None):
        problems.append(Problem(file, None, "--tokenizer-type", f"{tokenizer}: Megatron-LM takes the vocabulary size "
                                "from the tokenizer, which import-megatron cannot read; add --vocab-size N to the "
                                "arguments or give --set model.vocab=N"))
    from simcluster.spec.cluster import load_cluster

    per_node = load_cluster(cluster).gpus_per_node  # SpecError for an unknown preset
    moe_model, moe_training, moe_parallelism, moe_problems = megatron_moe.megatron_moe(
        args, ints, int(ints["--num-layers"] or 0), per_node, file)
    problems += moe_problems
    window_model, window_problems = megatron_window.megatron_window(args, int(ints["--num-layers"] or 0), file)
    problems += window_problems
    if problems:
        raise SpecError(problems)
    t = ints["--tensor-model-parallel-size"] or 1
    p = ints["--pipeline-model-parallel-size"] or 1
    cp = ints["--context-parallel-size"] or 1
    layers = int(ints["--num-layers"] or 0)
    vocab = ints["--padded-vocab-size"]
    if vocab is None:
        raw = ints["--vocab-size"] or GPT2_VOCAB
        multiple = (ints["--make-vocab-size-divisible-by"] or DIVISIBLE_BY) * t
        vocab = -(-raw // multiple) * multiple
    model: dict[str, Any] = {"layers": layers, "hidden": ints["--hidden-size"], "heads": ints["--num-attention-heads"],
                             "seq_len": seq, "vocab": vocab}
    if ints["--num-query-groups"] is not None and args.get("--group-query-attention", True):
        model["kv_heads"] = ints["--num-query-groups"]
    if ints["--ffn-hidden-size"] is not None:
        model["ffn_hidden"] = ints["--ffn-hidden-size"]
    if ints["--kv-channels"] is not None:
        model["head_dim"] = ints["--kv-channels"]
    model["mlp"] = "swiglu" if args.get("--swiglu") else "gelu"
    model["tied_embeddings"] = not args.get("--untie-embeddings-and-output-weights")
    if args.get("--qk-layernorm"):
        model["qk_norm"] = True
    model.update(moe_model)
    model.update(window_model)
    granularity = args.get("--recompute-granularity")
    if granularity in ("full", "selective"):
        recompute = granularity
    elif args.get("--checkpoint-activations") or "--recompute-method" in args or "--recompute-num-layers" in args:
        recompute = "full"
    elif args.get("--recompute-activations"):
        recompute = "selective"
    else:
        recompute = "none"
    modules = str(args.get("--recompute-modules") or "").split()
    if args.get("--moe-layer-recompute"):  # deprecated: selective granularity with moe among the modules
        if recompute == "full":  # Megatron-Core's TransformerConfig.__post_init__ refuses it too
            raise SpecError([Problem("import-megatron", None, "--moe-layer-recompute",
                                     "Megatron-Core refuses --moe-layer-recompute with full recompute granularity")])
        recompute, modules = "selective", (modules or ["core_attn"]) + ([] if "moe" in modules else ["moe"])
    training: dict[str, Any] = {
        "global_batch": ints["--global-batch-size"], "micro_batch": ints["--micro-batch-size"] or 1,
        "precision": "bf16" if args.get("--bf16") else "fp16" if args.get("--fp16") else "fp32",
        "optimizer": str(args.get("--optimizer", "adam")), "recompute": recompute,
        "flash_attention": bool(args.get("--use-flash-attn")) or args.get("--attention-backend") in _FLASH_BACKENDS}
    training.update(moe_training)
    if recompute == "selective" and modules:  # Megatron-Core's recompute_modules (inert without selective granularity)
        training["recompute_modules"] = modules
    elif recompute == "selective" and args.get("--multi-latent-attention"):  # Megatron-Core's default, [core_attn]:
        training["recompute_modules"] = ["core_attn"]  # unset, simcluster's mla reruns the up-projections too
    if recompute == "full" and args.get("--recompute-method") == "block":  # each chunk's first N layers
        training["recompute_num_layers"] = ints["--recompute-num-layers"] or 1  # Megatron's default N: 1
    if args.get("--no-gradient-accumulation-fusion"):
        training["gradient_accumulation_fusion"] = False
    if args.get("--grad-reduce-in-bf16"):
        training["grad_reduce_in_bf16"] = True
    ddp = args.get("--DDP-impl")
    overlap = ddp == "torch" if isinstance(ddp, str) else bool(args.get("--overlap-grad-reduce"))
    parallelism: dict[str, Any] = {"tensor": t, "pipeline": p, **moe_parallelism}
    if args.get("--no-async-tensor-model-parallel-allreduce"):
        parallelism["tp_grad_overlap"] = False
    if args.get("--overlap-param-gather"):
        parallelism["overlap_param_gather"] = True
    if args.get("--defer-embedding-wgrad-compute"):
        parallelism["defer_embedding_wgrad_compute"] = True
        parallelism["wgrad_deferral_limit"] = ints["--wgrad-deferral-limit"] or 0
    if cp > 1:
        parallelism["context"] = cp
    per_chunk = ints["--num-layers-per-virtual-pipeline-stage"]
    layout = args.get("--pipeline-model-parallel-layout")
    if isinstance(layout, str):  # Megatron-Core's flexible layout: layers per model chunk (spec.pipeline_layout)
        if per_chunk:  # Megatron-Core refuses the two together too
            raise SpecError([Problem(file, None, "--pipeline-model-parallel-layout", "cannot be given with "
                                     "--num-layers-per-virtual-pipeline-stage: the layout sets the chunks")])
        try:
            chunk_layers, v = stage_layers_of(layout.strip("'\""), p, layers, int(model.get("mtp_layers") or 0))
        except ValueError as exc:
            raise SpecError([Problem(file, None, "--pipeline-model-parallel-layout", str(exc))]) from None
        parallelism.update(schedule="interleaved" if v > 1 else "1f1b", virtual_stages=v, stage_layers=chunk_layers)
    elif per_chunk:
        if layers % (p * per_chunk):
            raise SpecError([Problem(file, None, "--num-layers-per-virtual-pipeline-stage",
                                     f"{layers} layers do not split into {p} stages of chunks of {per_chunk}")])
        parallelism["schedule"] = "interleaved"
        parallelism["virtual_stages"] = layers // (p * per_chunk)
    else:
        parallelism["schedule"] = "1f1b"
    parallelism["sequence_parallel"] = bool(args.get("--sequence-parallel"))
    parallelism["zero_stage"] = 1 if args.get("--use-distributed-optimizer") else 0
    parallelism["overlap_grad_reduce"] = overlap
    if args.get("--no-overlap-p2p-communication"):
        parallelism["overlap_p2p_comm"] = False
    if gpus is None and nodes is None and ints["--nnodes"]:
        nodes = ints["--nnodes"]
        if ints["--nproc-per-node"]:
            gpus = nodes * ints["--nproc-per-node"]
    if gpus is not None:
        if gpus % (t * p * cp):
            raise SpecError([Problem(file, None, "--gpus", f"{gpus} GPUs do not split into tensor {t} × pipeline "
                                     f"{p} × context {cp}")])
        parallelism["data"] = gpus // (t * p * cp)
    cluster_section: dict[str, Any] = {"preset": cluster}
    if gpus is not None:
        if gpus % per_node == 0:
            cluster_section["nodes"] = gpus // per_node
        else:
            cluster_section["devices"] = gpus
    elif nodes is not None:
        cluster_section["nodes"] = nodes
    data: dict[str, Any] = {"name": name or Path(file).stem, "model": model, "training": training,
                            "parallelism": parallelism, "cluster": cluster_section}
    known = set(ints) | _FLAGS | megatron_moe.MAPPED | megatron_moe.NO_COST | megatron_window.MAPPED | {
        "--recompute-granularity", "--recompute-method", "--recompute-num-layers", "--recompute-modules",
        "--pipeline-model-parallel-layout", "--DDP-impl", "--optimizer",
        "--tokenizer-type", "--attention-backend"}
    ignored = sorted(k for k in args if k not in known)
    return data, ignored


def workload_yaml(data: dict[str, Any], header: str = "") -> str:
    """A workload mapping as a YAML file, ``header`` as comment lines on top."""
    comment = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    return comment + yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=100)
