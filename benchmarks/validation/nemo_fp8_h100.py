"""Held-out check: the FP8 rows of the DGX Cloud Benchmarking tables whose BF16 rows the corpus holds.

    python benchmarks/validation/nemo_fp8_h100.py [--json FILE]

Source: NVIDIA/dgxc-benchmarking v24.11.1 (commit 35a9aec), the READMEs the corpus' NeMo rows come from
(``llama3.1/README_8b.md``, ``README_70b.md``, ``README_405b.md``, ``nemo_megatron/README_175b.md``,
``nemotron/README_15b.md``, ``README_340b.md``): each table of BF16 throughput on H100 has an FP8 twin with the
same layout (TP, PP, CP, VP, micro batch, accumulation) and the same GPU counts. The corpus holds ten BF16
figures; their ten FP8 twins were looked at only after Transformer Engine's per-tensor FP8 was built
(``training.fp8_recipe``, session 11), as a check of it.

Each FP8 row is its corpus BF16 row (workload and overrides, ``simcluster/data/validation``) with
``training.precision: fp8``, ``fp8_recipe: delayed`` and ``fp8_weight_cache: true``: NeMo 24.09/24.11 trains
FP8 with Transformer Engine's ``DelayedScaling`` (the recipes' ``fp8_hybrid`` format with NeMo's defaults
``fp8_amax_history_len: 1024``, ``fp8_amax_compute_algo: max``: ``llama3.1/llama3.1_70b.yaml`` and
``grok1/grok1_314b.yaml`` at 35a9aec) through Megatron-Core's TE layers, which cast each weight once per step.
The Llama 3.1 and Nemotron-4 scripts set ``+model.fp8_params`` (FP8 weights, gathered in FP8;
``llama3.1/configure.sh``, ``nemotron/configure.sh``): ``training.fp8_param_gather`` on those rows (since session
17; gathered in bf16 before, printed as a caveat).
"""

from __future__ import annotations

import functools
import json
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # run from a source checkout

from simcluster import api  # noqa: E402
from simcluster.validation.stats import error_summary, held_line, held_out_parser, interval_holds  # noqa: E402
from simcluster.validation import corpus  # noqa: E402

#: (the corpus BF16 row, the FP8 twin's tokens/s, whether its script sets fp8_params), dgxc-benchmarking 35a9aec.
ROWS: tuple[tuple[str, float, bool], ...] = (
    ("llama3-8b", 108436, True),             # llama3.1/README_8b.md, 24.09 FP8, 8x H100, 9.67 s/step
    ("llama3-70b", 95239, True),             # llama3.1/README_70b.md, 24.09 FP8, 64x H100, 11.01 s/step
    ("nemo-llama31-405b-576", 183664, True),   # llama3.1/README_405b.md, 24.09 FP8, 576x H100, 11.24 s/step
    ("nemo-llama31-405b-2304", 668626, True),  # the same, 2304x H100, 12.35 s/step
    ("nemo-gpt3-175b-128", 88562, False),      # nemo_megatron/README_175b.md, 24.11 FP8, 128x H100, 5.92 s/step
    ("nemo-gpt3-175b-2048", 1344328, False),   # the same, 2048x H100, 6.24 s/step
    ("nemotron4-15b-16", 126031, True),        # nemotron/README_15b.md, 24.11 FP8, 16x H100, 2.08 s/step
    ("nemotron4-15b-2048", 15391941, True),    # the same, 2048x H100, 2.18 s/step
    ("nemotron4-340b-128", 41478, True),       # nemotron/README_340b.md, 24.11 FP8, 128x H100, 3.16 s/step
    ("nemotron4-340b-2048", 600903, True),     # the same, 2048x H100, 3.49 s/step
)
FP8 = ("training.precision=fp8", "training.fp8_recipe=delayed", "training.fp8_weight_cache=true")


@functools.cache
def _corpus() -> dict[str, corpus.Row]:
    return {r.key: r for g in corpus.load_corpus() for r in g.rows}


def corpus_row(key: str) -> corpus.Row:
    """The corpus row ``key`` (the corpus read once)."""
    return _corpus()[key]


def predict(row: corpus.Row, fp8: bool, fp8_params: bool = False) -> dict[str, Any]:
    """The summary of the corpus row's workload, in FP8 as its twin runs (module docstring; with its FP8 weights
    gathered in FP8 where its script sets ``fp8_params``) or as the corpus has it."""
    extra = (FP8 + (("training.fp8_param_gather=true",) if fp8_params else ())) if fp8 else ()
    spec = api.load(row.path, tuple(row.overrides) + extra)
    return api.simulate(spec).summary


def main(argv: list[str] | None = None) -> int:
    parser = held_out_parser("nemo_fp8_h100.py", __doc__)
    args = parser.parse_args(argv)
    out: list[dict[str, Any]] = []
    for key, published, fp8_params in ROWS:
        row = corpus_row(key)
        summary = predict(row, True, fp8_params)
        fp8, bf16 = float(summary["tokens_per_s"]), float(predict(row, False)["tokens_per_s"])
        rec = {"row": key, "published_fp8": published, "predicted_fp8": fp8, "error": fp8 / published - 1,
               "published_speedup": published / row.published, "predicted_speedup": fp8 / bf16,
               "inside": interval_holds(summary, "tokens_per_s", published), "fp8_params": fp8_params}
        out.append(rec)
        print(f"{key:24s} FP8 published {published:12,.0f}  predicted {fp8:12,.0f}  {rec['error']:+6.1%} "
              f"{'in' if rec['inside'] else 'OUTSIDE':7s} "
              f"FP8/BF16 published {rec['published_speedup']:.3f}  predicted {rec['predicted_speedup']:.3f}"
              f"{'  [fp8_params]' if fp8_params else ''}", flush=True)
    errors = [r["error"] for r in out]
    print(f"{error_summary(errors)}; FP8/BF16 speedup MAPE "
          f"{statistics.fmean(abs(r['predicted_speedup'] / r['published_speedup'] - 1) for r in out):.2%}; "
          f"{held_line([r['inside'] for r in out])}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
