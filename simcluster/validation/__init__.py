"""Validation against published training runs: a corpus of groups, shipped with the package.

```python
from simcluster.validation import corpus, runner

groups = corpus.select(corpus.load_corpus(), "1.7b,llama3-8b")
results = {g.name: runner.run_group(g) for g in groups}
print(runner.summary(groups, results))
```

| module | what |
|---|---|
| `corpus.py` | the group files' format, loading, row selection, tolerance and acceptance |
| `runner.py` | the `validate-published` command: runs groups, prints and writes the results |
| `narayanan2021.py` | group `table1`: Narayanan et al. 2021 (SC'21) Table 1, its eq. 3 check, breakdown, `--scripted` |

The groups are package data in ``simcluster/data/validation/``: ``table1.yaml`` (its workloads
in ``narayanan2021/gpt-<row>.yaml``, so an installed copy runs ``python -m simcluster
validate-published --group table1`` without a source checkout) and ``famous.yaml``, whose rows
run the repository's ``workloads/<name>.yaml`` (a source checkout is needed for those).
"""
