"""dmin.check: parity with FuxiCTR on every case in tests/data/fuxictr, as a function and as a command."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

import numpy as np

import dmin
import dmin.check
from dmin_ref.export import load_model
from dmin_tests import _env
from world.generate import roc_auc as world_auc


class Parity(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="dmin-py-check-")
        cls.files = {}
        for case in _env.CASES:  # the case as FuxiCTR would hand it over: inputs.npz and y_pred.npy
            d = os.path.join(_env.CASES_DIR, case)
            inputs = _env.load_json(os.path.join(d, "inputs.json"))
            spec = dmin.load(_env.fuxictr_model(case), self_test=False).spec
            arrays = _env.to_arrays(spec, inputs["samples"])
            arrays["clk"] = np.asarray(inputs["labels"]["clk"], dtype=np.float32)
            npz, npy = os.path.join(cls.tmp, case + ".npz"), os.path.join(cls.tmp, case + ".y_pred.npy")
            np.savez(npz, **arrays)
            np.save(npy, np.asarray(_env.load_json(os.path.join(d, "expected.json"))["y_pred"], dtype=np.float32))
            cls.files[case] = (npz, npy, inputs["samples"], arrays["clk"])

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_every_case(self):
        for case in _env.CASES:
            with self.subTest(case):
                npz, npy, samples, labels = self.files[case]
                r = dmin.check.parity(_env.fuxictr_model(case), npy, npz, labels="clk")
                self.assertEqual(r["n"], 256)
                self.assertLessEqual(r["max_abs_diff"], 1e-5)
                self.assertLessEqual(r["mean_abs_diff"], r["max_abs_diff"])
                ref = load_model(_env.fuxictr_model(case)).predict(samples)
                np.testing.assert_allclose(r["predictions"], ref, rtol=0, atol=1e-5)
                self.assertAlmostEqual(r["auc_fuxictr"], world_auc(labels, np.load(npy)), places=12)
                self.assertAlmostEqual(r["auc_dmin"], world_auc(labels, r["predictions"]), places=12)
                self.assertLess(abs(r["auc_dmin"] - r["auc_fuxictr"]), 1e-3)

    def test_command(self):
        npz, npy, _, _ = self.files["heads4_prelu"]
        cmd = [sys.executable, "-m", "dmin.check", _env.fuxictr_model("heads4_prelu"), "--fuxictr-predictions", npy,
               "--inputs", npz, "--labels", "clk", "--tolerance", "1e-5"]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        for line in ("samples: 256", "max |dp|: ", "mean |dp|: ", "AUC fuxictr: 0.", "AUC dmin: 0."):
            self.assertIn(line, p.stdout)
        worst = float(re.search(r"max \|dp\|: (\S+)", p.stdout).group(1))
        self.assertLessEqual(worst, 1e-5)
        # a tolerance below the observed difference fails with status 1; a bad input with status 2
        if worst > 0:
            p = subprocess.run(cmd[:-1] + ["0"], capture_output=True, text=True, timeout=120)
            self.assertEqual(p.returncode, 1)
            self.assertIn("exceeds the tolerance", p.stderr)
        p = subprocess.run(cmd[:-4] + ["--labels", "no_such_key"], capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 2)
        self.assertIn("labels: 'no_such_key' is neither a key of the inputs nor a .npy file", p.stderr)

    def test_auc(self):
        rng = np.random.RandomState(1)
        y = rng.randint(0, 2, 500)
        s = np.round(rng.rand(500), 2)  # many ties
        self.assertAlmostEqual(dmin.check.roc_auc(y, s), world_auc(y, s), places=12)
        self.assertEqual(dmin.check.roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]), 1.0)
        self.assertTrue(np.isnan(dmin.check.roc_auc([1, 1], [0.1, 0.2])))


if __name__ == "__main__":
    unittest.main()
