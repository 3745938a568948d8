"""Exporter error paths: exit status 2, exactly one stderr line naming the problem, no output file."""

import json
import os
import shutil
import tempfile
import unittest

import torch

from tests import _util


class ExportErrors(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="dmin-errors-")
        cls.case = _util.case_files("tiny_seq_trained")
        cls.params = _util.load_json(cls.case["params"])
        cls.state = torch.load(cls.case["checkpoint"], map_location="cpu", weights_only=True)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.out_dir = tempfile.mkdtemp(dir=self.tmp)
        self.out = os.path.join(self.out_dir, "model.safetensors")

    def write_params(self, params, name="params.json"):
        p = os.path.join(self.tmp, name)
        with open(p, "w") as fh:
            json.dump(params, fh)
        return p

    def write_state(self, state, name="bad.model"):
        p = os.path.join(self.tmp, name)
        torch.save(state, p)
        return p

    def run_fail(self, *args, expect=(), subprocess=False):
        rc, so, se = _util.run_tool(*args, inproc=not subprocess)
        self.assertEqual(rc, 2, "stdout=%r stderr=%r" % (so, se))
        lines = se.splitlines()
        self.assertEqual(len(lines), 1, se)
        self.assertTrue(se.endswith("\n"))
        self.assertTrue(lines[0].startswith("dmin-export: error: "), lines[0])
        for e in expect:
            self.assertIn(e, lines[0])
        self.assertEqual(os.listdir(self.out_dir), [], "no output or temp file may remain")
        return lines[0]

    def fx(self, params=None, checkpoint=None, extra=()):
        return ("fuxictr", "--checkpoint", checkpoint or self.case["checkpoint"], "--feature-map",
                self.case["feature_map"], "--params", params or self.case["params"], "-o", self.out) + tuple(extra)

    def test_missing_param(self):
        p = dict(self.params)
        del p["num_heads"]
        self.run_fail(*self.fx(self.write_params(p)), expect=("num_heads", "missing"), subprocess=True)

    def test_wrong_tensor_shape(self):
        st = dict(self.state)
        st["multi_interest_extractor.0.W_qkv.weight"] = torch.zeros(24, 9)
        self.run_fail(*self.fx(checkpoint=self.write_state(st)),
                      expect=("multi_interest_extractor.0.W_qkv.weight", "[24, 8]", "[24, 9]"), subprocess=True)

    def test_dnn_input_width(self):
        p = dict(self.params, enable_sum_pooling=True)
        self.run_fail(*self.fx(self.write_params(p)), expect=("DNN input width", "144", "dnn.mlp.0.weight", "[64, 128]"))

    def test_missing_key(self):
        st = dict(self.state)
        del st["dnn.mlp.3.alpha"]
        self.run_fail(*self.fx(checkpoint=self.write_state(st)), expect=("missing tensor dnn.mlp.3.alpha", "[32]"))

    def test_unexpected_key(self):
        st = dict(self.state)
        st["dnn.mlp.9.weight"] = torch.zeros(3)
        self.run_fail(*self.fx(checkpoint=self.write_state(st)), expect=("unexpected tensor dnn.mlp.9.weight",))

    def test_unknown_activation(self):
        p = dict(self.params, dnn_activations="Swish")
        self.run_fail(*self.fx(self.write_params(p)), expect=("dnn_activations", "Swish"))
        p = dict(self.params, attention_activation="gelu")
        self.run_fail(*self.fx(self.write_params(p)), expect=("attention_activation", "gelu"))

    def test_list_of_lists_target(self):
        cfg = os.path.join(self.tmp, "model_config.yaml")
        with open(self.case["config"]) as fh:
            text = fh.read()
        text = text.replace("target_field: adgroup_id", "target_field: [[adgroup_id, cate_id]]")
        with open(cfg, "w") as fh:
            fh.write(text)
        self.run_fail("fuxictr", "--checkpoint", self.case["checkpoint"], "--feature-map", self.case["feature_map"],
                      "--config", cfg, "--expid", "DMIN_test", "-o", self.out, expect=("target_field", "nested list"))

    def test_sequence_feature_encoder(self):
        fm = _util.load_json(self.case["feature_map"])
        fm["features"][-1]["click_sequence"]["feature_encoder"] = "layers.MaskedAveragePooling()"
        fmp = os.path.join(self.tmp, "fm_enc.json")
        with open(fmp, "w") as fh:
            json.dump(fm, fh)
        self.run_fail("fuxictr", "--checkpoint", self.case["checkpoint"], "--feature-map", fmp, "--params",
                      self.case["params"], "-o", self.out, expect=("click_sequence", "feature_encoder"))
        # ... and the documented fix works
        p = dict(self.params, feature_specs=[{"name": "click_sequence", "feature_encoder": None}])
        rc, so, se = _util.run_tool("fuxictr", "--checkpoint", self.case["checkpoint"], "--feature-map", fmp,
                                    "--params", self.write_params(p, "fixed.json"), "-o", self.out, inproc=True)
        self.assertEqual(rc, 0, se)
        os.unlink(self.out)

    def test_misc_one_line_errors(self):
        self.run_fail(*self.fx(checkpoint=os.path.join(self.tmp, "nope.model")), expect=("does not exist",))
        self.run_fail("fuxictr", "--checkpoint", self.case["checkpoint"], "-o", self.out, expect=("required",))
        self.run_fail(*self.fx(extra=("--refiner-mask", "bool")), expect=("refiner-mask",))
        self.run_fail("fuxictr", "--checkpoint", self.case["checkpoint"], "--feature-map", self.case["feature_map"],
                      "--config", self.case["config"], "--expid", "DMIN_nope", "-o", self.out, expect=("DMIN_nope",))
        self.run_fail(*self.fx(extra=("--context-features", "nope")), expect=("nope",))
        garbage = os.path.join(self.tmp, "garbage.model")
        with open(garbage, "wb") as fh:
            fh.write(b"not a checkpoint")
        self.run_fail(*self.fx(checkpoint=garbage), expect=("garbage.model",))
        st = dict(self.state)
        st["dnn.mlp.0.bias"] = torch.full((64,), float("nan"))
        self.run_fail(*self.fx(checkpoint=self.write_state(st, "nan.model")), expect=("dnn.mlp.0.bias", "non-finite"))
        self.run_fail("torch", "--module-state", self.case["checkpoint"], "--spec", self.case["params"], "-o",
                      self.out, expect=("spec",))
        # nonexistent output directory
        rc, so, se = _util.run_tool(*self.fx()[:-2], "-o", os.path.join(self.tmp, "no", "dir", "x.safetensors"),
                                    inproc=True)
        self.assertEqual(rc, 2)
        self.assertIn("does not exist", se)

    def test_existing_output_not_clobbered_on_error(self):
        with open(self.out, "wb") as fh:
            fh.write(b"old")
        p = dict(self.params)
        del p["embedding_dim"]
        rc, so, se = _util.run_tool(*self.fx(self.write_params(p)), inproc=True)
        self.assertEqual(rc, 2)
        with open(self.out, "rb") as fh:
            self.assertEqual(fh.read(), b"old")
        self.assertEqual(os.listdir(self.out_dir), ["model.safetensors"])
        os.unlink(self.out)


if __name__ == "__main__":
    unittest.main()
