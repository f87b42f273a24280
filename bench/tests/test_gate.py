"""The CI gate fails on an injected regression and passes otherwise.

With MBENCH_MEASURED pointing at a real measurement (.ci/run saves one from `bench/gate`),
the gate is checked against that; otherwise against a synthetic one. Each check runs the
real `bench/gate` command with `--measured` and a recorded fake baseline.
"""

import copy
import json
import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BENCH))

from mbench.gate import THRESHOLD_PCT  # noqa: E402
from mbench.history import machine_facts  # noqa: E402


def measurement():
    path = os.environ.get("MBENCH_MEASURED")
    if path:
        return json.load(open(path))
    return {"machine": machine_facts(), "profile": "dev",
            "figures": {"ir.image.photo-hubble": 180_000_000, "ir.image.p3": 90_000_000,
                        "ir.request.200": 11_000, "ir.request.304": 10_800, "ir.request.unknown": 12_000}}


def gate(measured, baseline):
    with tempfile.TemporaryDirectory() as d:
        m, b = f"{d}/measured.json", f"{d}/baseline.json"
        json.dump(measured, open(m, "w"))
        json.dump(baseline, open(b, "w"))
        p = subprocess.run([sys.executable, str(BENCH / "gate"), "--measured", m, "--baseline", b],
                           capture_output=True, text=True)
        return p.returncode, p.stdout + p.stderr


def scaled(measured, figure, factor):
    """A baseline as if recorded before `figure` changed by 1/factor."""
    b = copy.deepcopy(measured)
    b["figures"][figure] = round(b["figures"][figure] / factor)
    b["threshold_pct"] = THRESHOLD_PCT
    return b


class GateTest(unittest.TestCase):
    def setUp(self):
        self.m = measurement()

    def test_same_counts_pass(self):
        code, out = gate(self.m, scaled(self.m, next(iter(self.m["figures"])), 1.0))
        self.assertEqual(code, 0, out)
        self.assertIn("gate: ok", out)

    def test_injected_image_regression_fails(self):
        fig = next(f for f in self.m["figures"] if f.startswith("ir.image."))
        code, out = gate(self.m, scaled(self.m, fig, 1.05))  # 5% more instructions than recorded
        self.assertEqual(code, 1, out)
        self.assertIn("REGRESSION", out)
        self.assertIn(fig, out)

    def test_injected_request_regression_fails(self):
        code, out = gate(self.m, scaled(self.m, "ir.request.304", 1.30))
        self.assertEqual(code, 1, out)

    def test_growth_within_threshold_passes(self):
        code, out = gate(self.m, scaled(self.m, "ir.request.200", 1.01))
        self.assertEqual(code, 0, out)

    def test_improvement_passes(self):
        code, out = gate(self.m, scaled(self.m, "ir.request.200", 0.8))
        self.assertEqual(code, 0, out)

    def test_missing_figure_fails(self):
        b = copy.deepcopy(self.m)
        b["figures"]["ir.image.gone"] = 1000
        code, out = gate(self.m, b)
        self.assertEqual(code, 1, out)

    def test_other_isa_is_refused(self):
        b = copy.deepcopy(self.m)
        b["machine"] = dict(b["machine"], isa="x86-64-v2")
        code, out = gate(self.m, b)
        self.assertEqual(code, 2, out)
        self.assertIn("re-record", out)

    def test_other_cpu_model_same_isa_is_compared(self):
        b = copy.deepcopy(self.m)
        b["machine"] = dict(b["machine"], cpu="Some Other CPU")
        code, out = gate(self.m, b)
        self.assertEqual(code, 0, out)
        self.assertIn("note: baseline CPU", out)


if __name__ == "__main__":
    unittest.main()
