"""fixtures.py end to end: files, index, reference values vs the independent numpy re-computation."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import numpy as np

from tests import _util
from tests import numpy_ref
from dmin_ref import safetensors_io
from dmin_ref.export import load_model, read_dmin_file
from dmin_ref.samples import classify_sequence


class Fixtures(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="dmin-fixtures-")
        subprocess.run([sys.executable, os.path.join(_util.PYTHON_DIR, "dmin_ref", "fixtures.py"), "--out", cls.tmp],
                       check=True, stdout=subprocess.PIPE, timeout=300)
        cls.index = _util.load_json(os.path.join(cls.tmp, "index.json"))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_generation(self):
        names = self.index["configs"]
        self.assertGreaterEqual(len(names), 12)
        for n in names:
            self.assertTrue(os.path.isfile(os.path.join(self.tmp, n + ".safetensors")))
            self.assertTrue(os.path.isfile(os.path.join(self.tmp, n + ".ref.safetensors")))
        specs = {n: read_dmin_file(os.path.join(self.tmp, n + ".safetensors"))[0] for n in names}
        acts = set()
        for s in specs.values():
            acts.update(s["attention_activations"] + s["dnn_activations"])
        from dmin_ref.spec import CANONICAL_ACTIVATIONS
        self.assertEqual(acts, set(CANONICAL_ACTIVATIONS) | {None})
        self.assertTrue(any(s["refiner_mask"] == "strict" for s in specs.values()))
        self.assertTrue(any(s["task"] == "regression" for s in specs.values()))
        self.assertTrue(any(len(s["branches"]) > 1 for s in specs.values()))
        self.assertTrue(any(f["type"] == "numeric" for s in specs.values() for f in s["features"]))
        self.assertTrue(any(f["role"] == "context" for s in specs.values() for f in s["features"]))
        self.assertTrue(any(s["bn_only_once"] and s["batch_norm"] for s in specs.values()))
        self.assertTrue(any(s["enable_sum_pooling"] for s in specs.values()))
        self.assertTrue(any(not s["use_behavior_refiner"] and not s["use_pos_emb"] and not s["layer_norm"]
                            for s in specs.values()))

    def test_reference_files(self):
        for n in self.index["configs"]:
            with self.subTest(n):
                spec, T, reference, _ = read_dmin_file(os.path.join(self.tmp, n + ".safetensors"))
                R, meta = safetensors_io.read_file(os.path.join(self.tmp, n + ".ref.safetensors"))
                samples = json.loads(meta["samples"])
                self.assertEqual(int(meta["num_samples"]), len(samples))
                self.assertEqual(samples, reference["samples"])
                self.assertGreaterEqual(len(samples), 6)
                seq0 = spec["branches"][0]["sequence"][0]
                self.assertEqual({classify_sequence(s[seq0]) for s in samples}, {"empty", "partial", "full"})
                # no trivially 0/1 tensors
                for k, v in T.items():
                    self.assertFalse(np.all(v == 0) or np.all(v == 1), k)
                    if k.endswith("running_var"):
                        self.assertTrue(np.all(v > 0), k)
                H, nb = spec["num_heads"], len(spec["branches"])
                expected_names = set()
                for k in range(len(samples)):
                    for i in range(nb):
                        expected_names |= {"s%d.b%d.%s" % (k, i, x) for x in ("refined", "z", "attn", "interests")}
                    expected_names |= {"s%d.dnn_input" % k, "s%d.logit" % k, "s%d.prob" % k}
                self.assertEqual(set(R), expected_names)
                for k, s in enumerate(samples):
                    with np.errstate(over="ignore"):
                        ref = numpy_ref.forward_sample(spec, T, s)
                    for i, br in enumerate(ref["branches"]):
                        L, D = br["refined"].shape
                        self.assertEqual(R["s%d.b%d.z" % (k, i)].shape, (H, L, D))
                        self.assertEqual(R["s%d.b%d.attn" % (k, i)].shape, (H, L))
                        self.assertEqual(R["s%d.b%d.interests" % (k, i)].shape, (H, D))
                        for x in ("refined", "z", "attn", "interests"):
                            np.testing.assert_allclose(R["s%d.b%d.%s" % (k, i, x)], br[x], rtol=1e-6, atol=1e-6)
                    self.assertEqual(R["s%d.dnn_input" % k].shape, (spec["dnn_input_dim"],))
                    np.testing.assert_allclose(R["s%d.dnn_input" % k], ref["dnn_input"], rtol=1e-6, atol=1e-6)
                    np.testing.assert_allclose(R["s%d.logit" % k], [ref["logit"]], rtol=1e-6, atol=1e-6)
                    np.testing.assert_allclose(R["s%d.prob" % k], [ref["prob"]], rtol=1e-6, atol=1e-6)
                # float32 module vs float64 reference within the format tolerance
                p32 = np.asarray(reference["predictions"])
                p64 = np.asarray([R["s%d.prob" % k][0] for k in range(len(samples))], dtype=np.float64)
                self.assertTrue(np.all(np.abs(p32 - p64) <= 1e-5 + 1e-5 * np.abs(p64)), n)
                self.assertEqual(json.loads(meta["predictions_f32"]), reference["predictions"])
                m = load_model(os.path.join(self.tmp, n + ".safetensors"))
                np.testing.assert_allclose(m.predict(samples), p32, rtol=0, atol=1e-7)


if __name__ == "__main__":
    unittest.main()
