"""Validation against published training runs: the corpus ships with the package.

```python
from simcluster.validation import narayanan2021

results = narayanan2021.run_suite(narayanan2021.select("1.7b,39.1b"))
print(narayanan2021.report(results, wall_s=0.0, scripted=False))
```

| module | suite |
|---|---|
| `narayanan2021.py` | Narayanan et al. 2021 (SC'21) Table 1, ten GPT rows from 1.7B to 1T |

The rows and their workload files are package data in ``simcluster/data/validation/``
(``narayanan2021.yaml`` and ``narayanan2021/gpt-<row>.yaml``), so an installed copy runs
``python -m simcluster validate-published`` without a source checkout.
"""
