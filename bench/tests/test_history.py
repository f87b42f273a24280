"""Statistics, compare and page over a history written by the real recorder."""

import io
import sys
import tempfile
import unittest
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BENCH))

from mbench import compare, history, page, stats  # noqa: E402


class StatsTest(unittest.TestCase):
    def test_separated_samples_are_a_change(self):
        v = stats.verdict([100, 101, 99], [120, 121, 119], "lower")
        self.assertEqual(v["change"], "worse")
        self.assertGreater(v["ci"][0], 1)
        self.assertAlmostEqual(v["p"], 0.1)  # the smallest two-sided p with 3 against 3

    def test_overlapping_samples_are_noise(self):
        self.assertEqual(stats.verdict([100, 110, 95], [104, 99, 108], "lower")["change"], "same")

    def test_small_shift_below_min_effect_is_noise(self):
        self.assertEqual(stats.verdict([100, 100.5, 100.2], [101, 101.4, 101.2], "lower")["change"], "same")

    def test_instruction_counts_compare_exactly(self):
        self.assertEqual(stats.verdict([1000], [1001], "lower", exact=True)["change"], "worse")
        self.assertEqual(stats.verdict([1000], [1000], "lower", exact=True)["change"], "same")

    def test_higher_is_better(self):
        self.assertEqual(stats.verdict([100, 101, 99], [120, 121, 119], "higher")["change"], "better")

    def test_mann_whitney_large_samples(self):
        self.assertLess(stats.mann_whitney_p(list(range(20)), list(range(15, 35))), 0.001)
        self.assertGreater(stats.mann_whitney_p(list(range(20)), list(range(20))), 0.9)


class HistoryTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        h = Path(self.dir.name)
        # Two runs of this checkout: the second with slower req/s and more instructions.
        for rps, ir in (([100, 102, 101], 1000), ([80, 81, 79], 1100)):
            run = history.Run("full", "release", history=h)
            run.date = run.date + str(rps[0])  # keep the two runs apart in date order
            run.record("serve", "serve.pinned.200.rps", "req/s", "higher", rps, anchors={"nginx": [110, 111, 109]})
            run.record("ir", "ir.request.304", "instructions", "lower", [ir], kind="ir")
        self.recs = history.load(h)

    def tearDown(self):
        self.dir.cleanup()

    def test_records_carry_facts(self):
        r = self.recs[0]
        for key in ("commit", "date", "machine", "load", "figure", "unit", "samples", "anchors"):
            self.assertIn(key, r)
        self.assertEqual(len(r["load"]), 3)

    def test_compare_flags_both_regressions(self):
        c = self.recs[0]["commit"]
        # Same commit twice: compare the two runs by restricting to each run's records.
        old = [r for r in self.recs if r["samples"] in ([100, 102, 101], [1000])]
        new = [r for r in self.recs if r not in old]
        for r in new:
            r["commit"] = "f" * 40
        out = io.StringIO()
        rows = dict(compare.compare(old + new, c, "f" * 40, out=out))
        self.assertEqual(rows["serve.pinned.200.rps"]["change"], "worse")
        self.assertEqual(rows["ir.request.304"]["change"], "worse")

    def test_page_marks_the_regression(self):
        out, tables = Path(self.dir.name) / "index.html", Path(self.dir.name) / "LATEST.md"
        page.write(self.recs, out=out, tables=tables)
        html = out.read_text()
        self.assertIn("<svg", html)
        self.assertIn('class="card worse"', html)
        self.assertIn("nginx", html)  # the anchor line
        self.assertIn("serve.pinned.200.rps", tables.read_text())


if __name__ == "__main__":
    unittest.main()
