import copy
import json
import os
import tempfile
import unittest

import numpy as np
import torch

from tests import _util
from tests import numpy_ref
from dmin_ref import fixtures
from dmin_ref.export import load_model, read_dmin_file, write_dmin_file
from dmin_ref.model import DMIN, get_masks, make_batch
from dmin_ref.samples import generate_samples
from dmin_ref.spec import build_spec, load_feature_map


def random_model(name, seed=7):
    cfg = fixtures.configurations()[name]
    torch.manual_seed(seed)
    opts = cfg["options"]
    spec = build_spec(cfg["params"], cfg["feature_map"], candidate_features=opts.get("candidate_features"),
                      context_features=opts.get("context_features"), refiner_mask=opts.get("refiner_mask", "additive"))
    model = DMIN(spec)
    calib = generate_samples(spec, n=64, seed=seed + 1)
    fixtures.randomize_model(model, random_padding_rows=opts.get("random_padding_rows", False), calib_samples=calib)
    return model


class NumpyCrossCheck(unittest.TestCase):
    """The torch module (float64) against an independent numpy float64 re-computation."""

    def check(self, model, samples, tol=1e-9):
        m64 = copy.deepcopy(model).double().eval()
        with torch.no_grad():
            out = m64(make_batch(model.spec, samples), return_intermediates=True)
        T = model.dmin_tensors()  # float32 values, as stored in the file
        for k, s in enumerate(samples):
            with np.errstate(over="ignore"):
                ref = numpy_ref.forward_sample(model.spec, T, s)
            for i, br in enumerate(ref["branches"]):
                for key in ("refined", "z", "attn", "interests"):
                    np.testing.assert_allclose(out["branches"][i][key][k].numpy(), br[key], rtol=tol, atol=tol,
                                               err_msg="sample %d branch %d %s" % (k, i, key))
            np.testing.assert_allclose(out["dnn_input"][k].numpy(), ref["dnn_input"], rtol=tol, atol=tol)
            self.assertAlmostEqual(float(out["logit"][k]), ref["logit"], delta=tol * (1 + abs(ref["logit"])))
            self.assertAlmostEqual(float(out["prob"][k]), ref["prob"], delta=tol)

    def test_all_fixture_configurations(self):
        for name, cfg in fixtures.configurations().items():
            if cfg["big"]:
                continue
            with self.subTest(name):
                model = random_model(name)
                self.check(model, generate_samples(model.spec, n=8, seed=3))

    def test_fuxictr_case_against_float64_expectation(self):
        f = _util.case_files("heads2_dice_bn")
        spec = build_spec(_util.load_json(f["params"]), load_feature_map(f["feature_map"]))
        m = DMIN(spec)
        m.load_state_dict(torch.load(f["checkpoint"], map_location="cpu", weights_only=True))
        samples = _util.load_json(f["inputs"])["samples"][:40]
        exp = _util.load_json(f["expected"])
        T = m.dmin_tensors()
        got = [numpy_ref.forward_sample(spec, T, s)["prob"] for s in samples]
        np.testing.assert_allclose(got, exp["y_pred_float64"][:40], rtol=0, atol=1e-12)


class Semantics(unittest.TestCase):
    def test_refiner_matches_torch_multihead_attention(self):
        # REFERENCE_SEMANTICS Q1 on the torch present (1.13 on Debian 12, 2.6 on Debian 13): FuxiCTR's
        # float mask 1 - attn_mask.float() adds +1.0 to blocked logits, in eval and under no_grad too
        # (only torch 2.0.x excluded them) == our additive refiner; a bool mask == our strict one.
        model = random_model("tuple_bn_dice_dropout").eval()
        layer = model.behavior_refiner[0]
        spec = model.spec
        samples = generate_samples(spec, n=8, seed=5)
        batch = make_batch(spec, samples)
        with torch.no_grad():
            out = model(batch, return_intermediates=True)
            s0 = out["branches"][0]["sequence_emb"]
            pad, allowed = get_masks(batch["item_hist"])
            H = spec["num_heads"]
            fmask = 1 - allowed.unsqueeze(1).expand(-1, H, -1, -1).reshape(-1, *allowed.shape[1:]).float()
            attn, _ = layer.attention(s0, s0, s0, attn_mask=fmask)
            np.testing.assert_allclose(layer.attend(s0, allowed).numpy(), attn.numpy(), rtol=1e-5, atol=1e-6)
            bmask = ~allowed.unsqueeze(1).expand(-1, H, -1, -1).reshape(-1, *allowed.shape[1:])
            attn_b, _ = layer.attention(s0, s0, s0, attn_mask=bmask)
            layer.refiner_mask = "strict"
            np.testing.assert_allclose(layer.attend(s0, allowed).numpy(), attn_b.numpy(), rtol=1e-5, atol=1e-6)

    def test_masks(self):
        pad, allowed = get_masks(torch.tensor([[3, 0, 5, 0]]))
        self.assertEqual(pad.tolist(), [[True, False, True, False]])
        self.assertEqual(allowed[0].int().tolist(), [[1, 0, 0, 0], [1, 1, 0, 0], [1, 0, 1, 0], [1, 0, 1, 1]])

    def test_strict_vs_additive(self):
        model = random_model("tiny_seq_e8_h2_l5").double()
        spec = model.spec
        samples = generate_samples(spec, n=8, seed=11)
        seq = spec["branches"][0]["sequence"][0]
        L = spec["features"][[f["name"] for f in spec["features"]].index(seq)]["max_len"]
        partial = [s for s in samples if 0 < sum(x != 0 for x in s[seq]) < L]
        full = [s for s in samples if all(x != 0 for x in s[seq])]
        empty = [s for s in samples if not any(s[seq])]
        self.assertTrue(partial and full and empty)
        add = model.predict(samples)
        model.set_refiner_mask("strict")
        strict = model.predict(samples)
        model.set_refiner_mask("additive")
        diff = np.abs(add - strict)
        for i, s in enumerate(samples):
            nz = sum(x != 0 for x in s[seq])
            if nz == 0:
                # all padding with a zero padding row: every key/value row is identical -> same output
                self.assertLess(diff[i], 1e-12)
            else:
                # causal blocking (and padding for partial rows) differs
                self.assertGreater(diff[i], 1e-6, "sample %d (%d real tokens)" % (i, nz))
        # L = 1: nothing is ever blocked -> both modes are identical
        m1 = random_model("heads1").double()
        fm = fixtures.configurations()["heads1"]["feature_map"]
        fm = copy.deepcopy(fm)
        for e in fm["features"]:
            for k, v in e.items():
                if v.get("type") == "sequence":
                    v["max_len"] = 1
        spec1 = build_spec(fixtures.configurations()["heads1"]["params"], fm)
        one = DMIN(spec1).double()
        sd = m1.state_dict()
        sd = {k: (v[:1] if k.endswith("pos_emb") else v) for k, v in sd.items()}
        one.load_state_dict(sd)
        s1 = generate_samples(spec1, n=6, seed=2)
        a = one.predict(s1)
        one.set_refiner_mask("strict")
        np.testing.assert_allclose(one.predict(s1), a, rtol=0, atol=1e-14)

    def test_all_padding_is_uniform_mean(self):
        model = random_model("two_branches").double()
        samples = generate_samples(model.spec, n=1, seed=0)  # sample 0 is all padding
        with torch.no_grad():
            out = model(make_batch(model.spec, samples), return_intermediates=True)
        for br in out["branches"]:
            L = br["attn"].shape[-1]
            np.testing.assert_allclose(br["attn"][0].numpy(), np.full(br["attn"][0].shape, 1.0 / L), atol=1e-15)
            np.testing.assert_allclose(br["interests"][0].numpy(), br["z"][0].mean(dim=1).numpy(), atol=1e-12)
            self.assertTrue(torch.isfinite(br["interests"]).all())

    def test_padding_row_is_used_as_stored(self):
        model = random_model("plain_no_refiner").double()  # random padding rows
        spec = model.spec
        s = generate_samples(spec, n=2, seed=0)
        p1 = model.predict(s)
        table = model.embedding_layer.embedding_layers["item_id"].weight
        with torch.no_grad():
            table[0] += 0.5
        self.assertGreater(np.abs(model.predict(s) - p1).max(), 1e-6)

    def test_training_mode(self):
        model = random_model("tuple_bn_dice_dropout")
        spec = model.spec
        samples = generate_samples(spec, n=32, seed=9)
        batch = make_batch(spec, samples)
        model.train()
        torch.manual_seed(0)
        a = model(batch)
        b = model(batch)
        self.assertGreater(float((a - b).abs().max()), 0.0, "dropout must be active in train mode")
        loss = torch.nn.functional.binary_cross_entropy(a, torch.ones_like(a))
        loss.backward()
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        self.assertTrue(grads and all(torch.isfinite(g).all() for g in grads))
        model.eval()
        with torch.no_grad():
            np.testing.assert_array_equal(model(batch).numpy(), model(batch).numpy())

    def test_write_read_load_round_trip(self):
        model = random_model("numeric_context").eval()
        samples = generate_samples(model.spec, n=8, seed=1)
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "m.safetensors")
            ref = write_dmin_file(p, model, samples)
            spec, tensors, reference, vocab = read_dmin_file(p)
            self.assertEqual(json.loads(json.dumps(model.spec)), json.loads(json.dumps(spec)))
            self.assertEqual(reference["predictions"], ref["predictions"])
            self.assertIsNone(vocab)
            m2 = load_model(p)
            np.testing.assert_array_equal(m2.predict(samples), model.predict(samples))
            self.assertIs(m2.embedding_layer.embedding_layers["neg_item_hist"],
                          m2.embedding_layer.embedding_layers["item_id"])
            # numeric sample values are plain JSON numbers
            self.assertIsInstance(reference["samples"][0]["price"], float)


if __name__ == "__main__":
    unittest.main()
