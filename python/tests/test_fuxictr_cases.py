"""Every FuxiCTR case converts through tools/dmin-export and reproduces FuxiCTR's own y_pred."""

import json
import os
import shutil
import tempfile
import unittest

import numpy as np
import torch

from tests import _util
from dmin_ref import safetensors_io
from dmin_ref.export import load_model, read_dmin_file
from dmin_ref.samples import classify_sequence
from dmin_ref.spec import expected_tensor_shapes


class FuxiCTRCases(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="dmin-cases-")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def export(self, case, *extra, use_params=False, name=None, inproc=False):
        f = _util.case_files(case)
        out = os.path.join(self.tmp, (name or case) + ".safetensors")
        src = ["--params", f["params"]] if use_params else ["--config", f["config"], "--expid", f["expid"]]
        rc, so, se = _util.run_tool("fuxictr", "--checkpoint", f["checkpoint"], "--feature-map", f["feature_map"],
                                    *src, "-o", out, *extra, inproc=inproc)
        self.assertEqual(rc, 0, se)
        self.assertEqual(se, "")
        return out

    def test_cases_reproduce_fuxictr(self):
        for case in _util.CASES:
            with self.subTest(case):
                f = _util.case_files(case)
                out = self.export(case)
                spec, tensors, reference, vocab = read_dmin_file(out)
                # stored tensors: the checkpoint minus aliases / num_batches_tracked, bit-identical
                sd = torch.load(f["checkpoint"], map_location="cpu", weights_only=True)
                self.assertEqual(list(tensors), list(expected_tensor_shapes(spec)))
                for k, v in tensors.items():
                    np.testing.assert_array_equal(v, sd[k].numpy(), err_msg=k)
                self.assertNotIn("embedding_layer.embedding_layers.click_sequence.weight", tensors)
                self.assertEqual(spec["features"][-1]["table"], "embedding_layer.embedding_layers.adgroup_id.weight")
                # FuxiCTR's predictions on all 256 samples
                model = load_model(out)
                inputs = _util.load_json(f["inputs"])
                self.assertEqual([x["name"] for x in spec["features"]], inputs["feature_order"])
                exp = _util.load_json(f["expected"])
                pred = model.predict(inputs["samples"])
                y = np.asarray(exp["y_pred"])
                self.assertEqual(len(pred), 256)
                self.assertLessEqual(float(np.abs(pred - y).max()), 1e-5)
                p64 = load_model(out, dtype=torch.float64).predict(inputs["samples"])
                np.testing.assert_allclose(p64, exp["y_pred_float64"], rtol=0, atol=1e-12)
                # the reference pair stored in the file
                self.assertEqual(reference["tolerance"], 1e-5)
                rp = model.predict(reference["samples"])
                np.testing.assert_allclose(rp, reference["predictions"], rtol=0, atol=1e-7)
                kinds = {classify_sequence(s["click_sequence"]) for s in reference["samples"]}
                self.assertEqual(kinds, {"empty", "partial", "full"})
                self.assertEqual(spec["refiner_mask"], "additive")
                self.assertEqual(spec["provenance"]["source"], "fuxictr")
                # header alignment
                n, _ = safetensors_io.header_info(out)
                self.assertEqual((8 + n) % 64, 0)

    def test_params_json_equals_yaml_and_options(self):
        case = "heads4_prelu"
        f = _util.case_files(case)
        a = read_dmin_file(self.export(case, name="yaml", inproc=True))
        b = read_dmin_file(self.export(case, use_params=True, name="json", inproc=True))
        self.assertEqual(list(a[1]), list(b[1]))
        for k in a[1]:
            np.testing.assert_array_equal(a[1][k], b[1][k])
        sa, sb = dict(a[0]), dict(b[0])
        sa.pop("provenance"), sb.pop("provenance")
        self.assertEqual(sa, sb)
        # reference inputs from the case file, strict mask, roles, vocab
        vocab_path = os.path.join(self.tmp, "feature_vocab.json")
        vocab = {"userid": dict([("__PAD__", 0)] + [("u%d" % i, i) for i in range(1, 25)] + [("__OOV__", 25)]),
                 "adgroup_id": {"__PAD__": 0, "1001": 1, "1002": 2, "__OOV__": 95},
                 "unknown_feature": {"x": 1}}
        with open(vocab_path, "w") as fh:
            json.dump(vocab, fh)
        out = self.export(case, "--reference-inputs", f["inputs"], "--refiner-mask", "strict",
                          "--candidate-features", "brand,cate_id", "--context-features", "pid",
                          "--vocab", vocab_path, name="opts", inproc=True)
        spec, tensors, reference, voc = read_dmin_file(out)
        self.assertEqual(spec["refiner_mask"], "strict")
        roles = {x["name"]: x["role"] for x in spec["features"]}
        self.assertEqual((roles["brand"], roles["cate_id"], roles["pid"], roles["adgroup_id"], roles["userid"]),
                         ("candidate", "candidate", "context", "candidate", "user"))
        samples = _util.load_json(f["inputs"])["samples"]
        self.assertEqual(reference["samples"][:8], samples[:8])
        kinds = {classify_sequence(s["click_sequence"]) for s in reference["samples"]}
        self.assertEqual(kinds, {"empty", "partial", "full"})
        self.assertEqual(sorted(voc), ["adgroup_id", "userid"])
        self.assertEqual(voc["adgroup_id"], {"tokens": vocab["adgroup_id"], "oov_idx": 95, "pad_idx": 0})
        # strict-mask reference predictions come from the strict module
        m = load_model(out)
        self.assertEqual(m.behavior_refiner[0].refiner_mask, "strict")
        np.testing.assert_allclose(m.predict(reference["samples"]), reference["predictions"], atol=1e-7, rtol=0)
        rc, so, se = _util.run_tool("verify", out, inproc=True)
        self.assertEqual(rc, 0, se)

    def test_torch_path(self):
        # the project's own module: spec JSON + torch.save(model.state_dict())
        case = "sum_pooling"
        ref_file = self.export(case, name="src", inproc=True)
        model = load_model(ref_file)
        state = os.path.join(self.tmp, "state.pt")
        torch.save(model.state_dict(), state)
        spec_path = os.path.join(self.tmp, "spec.json")
        with open(spec_path, "w") as fh:
            json.dump(model.spec, fh)
        out = os.path.join(self.tmp, "torch.safetensors")
        rc, so, se = _util.run_tool("torch", "--module-state", state, "--spec", spec_path, "-o", out)
        self.assertEqual(rc, 0, se)
        a, b = read_dmin_file(ref_file), read_dmin_file(out)
        for k in a[1]:
            np.testing.assert_array_equal(a[1][k], b[1][k])
        self.assertEqual(b[0]["provenance"]["source"], "torch")
        f = _util.case_files(case)
        exp = _util.load_json(f["expected"])
        pred = load_model(out).predict(_util.load_json(f["inputs"])["samples"])
        self.assertLessEqual(float(np.abs(pred - np.asarray(exp["y_pred"])).max()), 1e-5)


if __name__ == "__main__":
    unittest.main()
