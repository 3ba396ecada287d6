"""A run on a device without kernel measurements of its own says so."""

from simcluster.metrics.summary import calibration_warnings


def test_uncalibrated_devices_are_named():
    assert calibration_warnings(["h100", "a100-80gb", "h200"]) == []
    (tpu,) = calibration_warnings(["tpu-v4", "tpu-v4"])
    assert tpu.startswith("calibration: tpu-v4 has no kernel measurements") and "memory" in tpu
    assert "gemm" not in tpu  # TPU GEMMs are calibrated (XLA matmuls on the same 128x128 MXU)
    (v100,) = calibration_warnings(["v100"])
    assert "attention" in v100 and "gemm" not in v100  # V100 GEMMs are calibrated (Markidis et al. 2018)
