"""The typed plan of a layout: rank grid, partition, schedules, block costs, unit steps.

Built once from a workload (:func:`build_plan`); lowering turns it into tasks, the
analytical screen sums it in closed form, metrics and reports read its counts.
"""

from simcluster.plan.plan import Params, Plan, build_plan, compute_model
from simcluster.plan.stack_bytes import grad_bytes_per_param

__all__ = ["Params", "Plan", "build_plan", "compute_model", "grad_bytes_per_param"]
