import copy
import unittest

import torch
import yaml

from tests import _util
from dmin_ref.model import DMIN
from dmin_ref.spec import (SpecError, build_spec, canonical_activation, count_parameters, expected_tensor_shapes,
                           load_feature_map, mlp_layout, parse_field_groups, validate_spec)

# REFERENCE_SEMANTICS 3.2: DMIN_test on tiny_seq (full FuxiCTR state_dict, aliases + num_batches_tracked)
DMIN_TEST_KEYS = [
    ("embedding_layer.embedding_layers.userid.weight", [26, 8]),
    ("embedding_layer.embedding_layers.adgroup_id.weight", [96, 8]),
    ("embedding_layer.embedding_layers.pid.weight", [4, 8]),
    ("embedding_layer.embedding_layers.cate_id.weight", [49, 8]),
    ("embedding_layer.embedding_layers.campaign_id.weight", [99, 8]),
    ("embedding_layer.embedding_layers.customer.weight", [98, 8]),
    ("embedding_layer.embedding_layers.brand.weight", [67, 8]),
    ("embedding_layer.embedding_layers.cms_segid.weight", [11, 8]),
    ("embedding_layer.embedding_layers.cms_group_id.weight", [11, 8]),
    ("embedding_layer.embedding_layers.final_gender_code.weight", [4, 8]),
    ("embedding_layer.embedding_layers.age_level.weight", [7, 8]),
    ("embedding_layer.embedding_layers.pvalue_level.weight", [4, 8]),
    ("embedding_layer.embedding_layers.shopping_level.weight", [5, 8]),
    ("embedding_layer.embedding_layers.occupation.weight", [4, 8]),
    ("embedding_layer.embedding_layers.click_sequence.weight", [96, 8]),
    ("behavior_refiner.0.attention.in_proj_weight", [24, 8]),
    ("behavior_refiner.0.attention.in_proj_bias", [24]),
    ("behavior_refiner.0.attention.out_proj.weight", [8, 8]),
    ("behavior_refiner.0.attention.out_proj.bias", [8]),
    ("behavior_refiner.0.ffn.0.weight", [16, 8]),
    ("behavior_refiner.0.ffn.0.bias", [16]),
    ("behavior_refiner.0.ffn.2.weight", [8, 16]),
    ("behavior_refiner.0.ffn.2.bias", [8]),
    ("behavior_refiner.0.layer_norm.weight", [8]),
    ("behavior_refiner.0.layer_norm.bias", [8]),
    ("multi_interest_extractor.0.W_qkv.weight", [24, 8]),
    ("multi_interest_extractor.0.W_o.0.weight", [8, 4]),
    ("multi_interest_extractor.0.W_o.1.weight", [8, 4]),
    ("multi_interest_extractor.0.layer_norm.0.weight", [8]),
    ("multi_interest_extractor.0.layer_norm.0.bias", [8]),
    ("multi_interest_extractor.0.layer_norm.1.weight", [8]),
    ("multi_interest_extractor.0.layer_norm.1.bias", [8]),
] + [("multi_interest_extractor.0.ffn.%d.%s" % (h, k), s) for h in range(2)
     for k, s in (("0.weight", [16, 8]), ("0.bias", [16]), ("2.weight", [8, 16]), ("2.bias", [8]))] + [
    ("multi_interest_extractor.0.target_attention.%d.%s" % (h, k), s) for h in range(2)
    for k, s in (("pos_emb", [5, 8]), ("W_proj.weight", [8, 16]), ("W_proj.bias", [8]),
                 ("attn_mlp.mlp.0.weight", [80, 32]), ("attn_mlp.mlp.0.bias", [80]),
                 ("attn_mlp.mlp.2.weight", [40, 80]), ("attn_mlp.mlp.2.bias", [40]),
                 ("attn_mlp.mlp.4.weight", [1, 40]), ("attn_mlp.mlp.4.bias", [1]))] + [
    ("dnn.mlp.0.weight", [64, 128]), ("dnn.mlp.0.bias", [64]),
    ("dnn.mlp.1.alpha", [64]), ("dnn.mlp.1.bn.running_mean", [64]), ("dnn.mlp.1.bn.running_var", [64]),
    ("dnn.mlp.1.bn.num_batches_tracked", []),
    ("dnn.mlp.2.weight", [32, 64]), ("dnn.mlp.2.bias", [32]),
    ("dnn.mlp.3.alpha", [32]), ("dnn.mlp.3.bn.running_mean", [32]), ("dnn.mlp.3.bn.running_var", [32]),
    ("dnn.mlp.3.bn.num_batches_tracked", []),
    ("dnn.mlp.4.weight", [1, 32]), ("dnn.mlp.4.bias", [1]),
]


def tiny_spec(**overrides):
    f = _util.case_files("tiny_seq_trained")
    params = _util.load_json(f["params"])
    params.update(overrides)
    return build_spec(params, load_feature_map(f["feature_map"]))


def _fm(*feats):
    return {"features": [dict([x]) for x in feats]}


def _cat(n, v, **kw):
    d = {"type": "categorical", "vocab_size": v, "padding_idx": 0}
    d.update(kw)
    return (n, d)


def _seq(n, v, L, share=None, **kw):
    d = {"type": "sequence", "vocab_size": v, "padding_idx": 0, "max_len": L}
    if share:
        d["share_embedding"] = share
    d.update(kw)
    return (n, d)


def _params(**kw):
    p = {"model": "DMIN", "embedding_dim": 16, "num_heads": 4, "target_field": ("item_id", "cate_id"),
         "sequence_field": ("item_history", "cate_history"), "neg_seq_field": None,
         "attention_hidden_units": [80, 40], "attention_activation": "ReLU", "dnn_hidden_units": [512, 128, 64],
         "dnn_activations": "Dice", "batch_norm": True, "bn_only_once": False, "net_dropout": 0,
         "attention_dropout": 0, "pos_emb_dim": 8, "enable_sum_pooling": False}
    p.update(kw)
    return p


SEC33_MAP = _fm(("user_id", {"type": "meta"}), _cat("item_id", 500), _cat("cate_id", 40),
                _seq("item_history", 500, 20, "item_id"), _seq("cate_history", 40, 20, "cate_id"))


class StateDictLayout(unittest.TestCase):
    def test_dmin_test_keys_equal_reference_table(self):
        spec = tiny_spec()
        model = DMIN(spec)
        got = [(k, list(v.shape)) for k, v in model.state_dict().items()]
        self.assertEqual(got, DMIN_TEST_KEYS)
        # the pure-python layout agrees with the module
        self.assertEqual(list(expected_tensor_shapes(spec, with_aliases=True, with_num_batches=True).items()),
                         DMIN_TEST_KEYS)
        # and the real FuxiCTR checkpoint has exactly these keys
        sd = torch.load(_util.case_files("tiny_seq_trained")["checkpoint"], map_location="cpu", weights_only=True)
        self.assertEqual([(k, list(v.shape)) for k, v in sd.items()], DMIN_TEST_KEYS)
        # shared tables: one module object, the stored key list has the owner only
        self.assertIs(model.embedding_layer.embedding_layers["click_sequence"],
                      model.embedding_layer.embedding_layers["adgroup_id"])
        stored = expected_tensor_shapes(spec)
        self.assertNotIn("embedding_layer.embedding_layers.click_sequence.weight", stored)
        self.assertFalse(any(k.endswith("num_batches_tracked") for k in stored))
        self.assertEqual(count_parameters(spec), 27971)
        self.assertEqual(spec["dnn_input_dim"], 128)

    def test_all_cases_load_strict(self):
        for case in _util.CASES:
            f = _util.case_files(case)
            spec = build_spec(_util.load_json(f["params"]), load_feature_map(f["feature_map"]))
            m = DMIN(spec)
            m.load_state_dict(torch.load(f["checkpoint"], map_location="cpu", weights_only=True), strict=True)

    def test_section_3_3_layout(self):
        spec = build_spec(_params(), SEC33_MAP)
        shapes = expected_tensor_shapes(spec, with_aliases=True, with_num_batches=True)
        self.assertEqual(spec["dnn_input_dim"], 160)
        m = DMIN(spec)
        self.assertEqual([(k, list(v.shape)) for k, v in m.state_dict().items()], list(shapes.items()))
        expect = {"behavior_refiner.0.attention.in_proj_weight": [96, 32],
                  "multi_interest_extractor.0.W_o.3.weight": [32, 8],
                  "multi_interest_extractor.0.target_attention.3.pos_emb": [20, 8],
                  "multi_interest_extractor.0.target_attention.0.W_proj.weight": [32, 40],
                  "multi_interest_extractor.0.target_attention.0.attn_mlp.mlp.0.weight": [80, 128],
                  "dnn.mlp.0.weight": [512, 160], "dnn.mlp.1.running_var": [512], "dnn.mlp.1.num_batches_tracked": [],
                  "dnn.mlp.2.alpha": [512], "dnn.mlp.3.weight": [128, 512], "dnn.mlp.4.weight": [128],
                  "dnn.mlp.5.bn.running_mean": [128], "dnn.mlp.6.weight": [64, 128], "dnn.mlp.8.alpha": [64],
                  "dnn.mlp.9.weight": [1, 64], "embedding_layer.embedding_layers.cate_history.weight": [40, 16]}
        for k, s in expect.items():
            self.assertEqual(shapes[k], s, k)
        self.assertIsInstance(m.dnn.mlp[10], torch.nn.Sigmoid)
        self.assertNotIn("embedding_layer.embedding_layers.user_id.weight", shapes)

    def test_index_shifts_bars_amazon_layout(self):
        # DMIN_amazonelectronics_x1_007: attention MLP 0,1(Dice),3,4(Dice),6; dnn 0(BN),1,4,7,10
        spec = build_spec(_params(embedding_dim=64, num_heads=8, pos_emb_dim=4, attention_hidden_units=[256, 128],
                                  attention_activation="Dice", attention_dropout=0.1, net_dropout=0.1,
                                  dnn_hidden_units=[1024, 512, 256], dnn_activations="ReLU", bn_only_once=True),
                          SEC33_MAP)
        shapes = expected_tensor_shapes(spec)
        ta = "multi_interest_extractor.0.target_attention.0.attn_mlp.mlp."
        self.assertEqual(sorted({int(k[len(ta):].split(".")[0]) for k in shapes if k.startswith(ta)}), [0, 1, 3, 4, 6])
        self.assertEqual(sorted({int(k[8:].split(".")[0]) for k in shapes if k.startswith("dnn.mlp.")}), [0, 1, 4, 7, 10])
        self.assertEqual(shapes["dnn.mlp.0.running_mean"], [spec["dnn_input_dim"]])
        m = DMIN(spec)
        self.assertEqual(set(m.state_dict()) - {k for k in m.state_dict() if k.endswith("num_batches_tracked")},
                         set(expected_tensor_shapes(spec, with_aliases=True)))


class SpecBuilding(unittest.TestCase):
    def test_field_groups(self):
        self.assertEqual(parse_field_groups("a", "t"), [("a",)])
        self.assertEqual(parse_field_groups(("a", "b"), "t"), [("a", "b")])
        self.assertEqual(parse_field_groups(["a", "b"], "t"), [("a",), ("b",)])
        self.assertEqual(parse_field_groups([("a", "b"), "c"], "t"), [("a", "b"), ("c",)])
        self.assertEqual(parse_field_groups("('a', 'b')", "t"), [("a", "b")])
        self.assertEqual(parse_field_groups("['a', 'b']", "t"), [("a",), ("b",)])
        self.assertEqual(parse_field_groups("[('a', 'b'), 'c']", "t"), [("a", "b"), ("c",)])
        self.assertEqual(parse_field_groups(["('a', 'b')"], "t"), [("a", "b")])
        self.assertIsNone(parse_field_groups(None, "t"))
        self.assertIsNone(parse_field_groups("None", "t"))
        with self.assertRaisesRegex(SpecError, "nested list"):
            parse_field_groups([["a", "b"]], "target_field")

    def test_yaml_tuple_vs_list(self):
        text = "target_field: !!python/tuple [item_id, cate_id]\nsequence_field: !!python/tuple [item_history, cate_history]\n"
        p = _params(**yaml.load(text, Loader=yaml.FullLoader))
        spec = build_spec(p, SEC33_MAP)
        self.assertEqual(len(spec["branches"]), 1)
        self.assertEqual(spec["branches"][0]["target"], ["item_id", "cate_id"])
        text = "target_field: [item_id, cate_id]\nsequence_field: [item_history, cate_history]\n"
        spec = build_spec(_params(num_heads=2, **yaml.load(text, Loader=yaml.FullLoader)), SEC33_MAP)
        self.assertEqual([b["target"] for b in spec["branches"]], [["item_id"], ["cate_id"]])

    def test_activation_names(self):
        for s, c in (("relu", "ReLU"), ("RELU", "ReLU"), ("dice", "Dice"), ("PRelu", "PReLU"), ("softmax", "Softmax"),
                     ("GELU", "GELU"), ("LeakyReLU", "LeakyReLU"), (None, None)):
            self.assertEqual(canonical_activation(s), c)
        for bad in ("gelu", "Swish", "GLU", "relu6", "LogSoftmax"):
            with self.assertRaises(SpecError):
                canonical_activation(bad)
        spec = tiny_spec(dnn_activations=["dice", None], attention_activation="sigmoid")
        self.assertEqual(spec["dnn_activations"], ["Dice", None])
        self.assertEqual(spec["attention_activations"], ["Sigmoid", "Sigmoid"])
        with self.assertRaisesRegex(SpecError, "activations given"):
            tiny_spec(dnn_activations=["Dice"])

    def test_log_style_params(self):
        # FuxiCTR's "Params:" log stringifies every value
        p = {k: str(v) for k, v in _params().items()}
        p["target_field"] = "('item_id', 'cate_id')"
        p["sequence_field"] = "('item_history', 'cate_history')"
        spec = build_spec(p, SEC33_MAP)
        self.assertEqual(spec, build_spec(_params(), SEC33_MAP))

    def test_roles_and_flags(self):
        spec = tiny_spec()
        roles = {f["name"]: f["role"] for f in spec["features"]}
        self.assertEqual(roles["adgroup_id"], "candidate")
        self.assertEqual(roles["userid"], "user")
        self.assertEqual(roles["click_sequence"], "user")
        ins = {f["name"]: f["in_dnn"] for f in spec["features"]}
        self.assertFalse(ins["click_sequence"])
        self.assertTrue(ins["adgroup_id"])
        f = _util.case_files("tiny_seq_trained")
        spec = build_spec(_util.load_json(f["params"]), load_feature_map(f["feature_map"]),
                          candidate_features=["brand", "cate_id"], context_features=["pid"])
        roles = {f["name"]: f["role"] for f in spec["features"]}
        self.assertEqual((roles["brand"], roles["cate_id"], roles["pid"], roles["adgroup_id"]),
                         ("candidate", "candidate", "context", "candidate"))
        with self.assertRaises(SpecError):
            build_spec(_util.load_json(f["params"]), load_feature_map(f["feature_map"]), context_features=["nope"])
        with self.assertRaises(SpecError):
            build_spec(_util.load_json(f["params"]), load_feature_map(f["feature_map"]),
                       context_features=["click_sequence"])
        oov = {f["name"]: f["oov_idx"] for f in spec["features"] if "oov_idx" in f}
        self.assertEqual(oov["userid"], 25)

    def test_use_features_feature_specs_meta_numeric_neg(self):
        fm = _fm(("uid", {"type": "meta"}), _cat("userid", 10), ("price", {"type": "numeric", "embedding_dim": 4}),
                 _cat("item_id", 50), _seq("hist", 50, 6, "item_id", feature_encoder="layers.MaskedAveragePooling()"),
                 _seq("neg_hist", 50, 6, "item_id"))
        p = _params(embedding_dim=8, num_heads=2, target_field="item_id", sequence_field="hist",
                    neg_seq_field="neg_hist", dnn_hidden_units=[8], batch_norm=False)
        with self.assertRaisesRegex(SpecError, "feature_encoder"):
            build_spec(p, fm)
        p["feature_specs"] = [{"name": "hist", "feature_encoder": None}]
        p["use_features"] = ["item_id", "price", "userid", "hist", "neg_hist"]
        spec = build_spec(p, fm)
        self.assertEqual([f["name"] for f in spec["features"]], ["item_id", "price", "userid", "hist", "neg_hist"])
        price = spec["features"][1]
        self.assertEqual((price["type"], price["dim"], price["table"]),
                         ("numeric", 4, "embedding_layer.embedding_layers.price.weight"))
        self.assertNotIn("oov_idx", price)
        self.assertFalse(spec["features"][4]["in_dnn"])
        self.assertEqual(spec["features"][4]["table"], "embedding_layer.embedding_layers.item_id.weight")
        self.assertEqual(spec["dnn_input_dim"], 2 * 8 + 8 + 4 + 8)
        # sharing with a LATER feature does not share (own table)
        fm2 = _fm(_seq("hist", 50, 6, "item_id"), _cat("item_id", 50))
        spec2 = build_spec(_params(embedding_dim=8, num_heads=2, target_field="item_id", sequence_field="hist",
                                   dnn_hidden_units=[8]), fm2)
        self.assertEqual(spec2["features"][0]["table"], "embedding_layer.embedding_layers.hist.weight")

    def test_errors(self):
        with self.assertRaisesRegex(SpecError, "num_heads is missing"):
            p = _params()
            del p["num_heads"]
            build_spec(p, SEC33_MAP)
        with self.assertRaisesRegex(SpecError, "not divisible"):
            build_spec(_params(num_heads=3), SEC33_MAP)
        with self.assertRaisesRegex(SpecError, "same number of branches"):
            build_spec(_params(sequence_field=["item_history", "cate_history"]), SEC33_MAP)
        with self.assertRaisesRegex(SpecError, "DNN input width"):
            fm = copy.deepcopy(SEC33_MAP)
            fm["features"].append(dict([_seq("extra_seq", 10, 3)]))
            build_spec(_params(), fm)
        with self.assertRaisesRegex(SpecError, "unknown activation"):
            build_spec(_params(dnn_activations="swish"), SEC33_MAP)

    def test_validate_spec_rejects(self):
        spec = tiny_spec()
        for mutate, msg in ((lambda s: s.update(dnn_input_dim=127), "dnn_input_dim"),
                            (lambda s: s.update(refiner_mask="bool"), "refiner_mask"),
                            (lambda s: s["features"][0].update(role="item"), "role"),
                            (lambda s: s["dnn_activations"].__setitem__(0, "dice"), "canonical"),
                            (lambda s: s["features"].append(dict(s["features"][0])), "duplicate")):
            s = copy.deepcopy(spec)
            mutate(s)
            with self.assertRaisesRegex(SpecError, msg):
                validate_spec(s)

    def test_mlp_layout_rule(self):
        lay = mlp_layout(10, [4, 3], ["Dice", None], 0.5, batch_norm=True, bn_only_once=False)
        self.assertEqual([(i, k) for i, k, _, _ in lay],
                         [(0, "linear"), (1, "batchnorm"), (2, "act"), (3, "dropout"), (4, "linear"), (5, "batchnorm"),
                          (6, "dropout"), (7, "linear")])


if __name__ == "__main__":
    unittest.main()
