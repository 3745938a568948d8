"""dmin.load / Model.predict / Scorer against `dmin predict`, the PyTorch reference and FuxiCTR."""
import os
import shutil
import tempfile
import threading
import unittest

import numpy as np

import dmin
from dmin import _dmin
from dmin_ref.export import encode_dmin, load_model, read_dmin_file
from dmin_ref.samples import generate_samples
from dmin_tests import _env
from world.generate import FEATURES, World

USER_PART = ("user_id", "age_level", "gender", "hour", "item_hist", "cate_hist")


def world_columns(n_users=40, per_user=5, seed=3):
    cols, _ = World(0).samples(n_users, per_user, seed)
    return {k: cols[k] for k in FEATURES}


class LoadAndSpec(unittest.TestCase):
    def test_load_spec(self):
        m = dmin.load(_env.WORLD_MODEL)
        spec = m.spec
        self.assertEqual([f["name"] for f in spec["features"]], list(FEATURES))
        self.assertEqual(spec["num_heads"], 4)
        spec["features"].clear()  # plain data: a fresh copy each time
        self.assertEqual(len(m.spec["features"]), len(FEATURES))
        self.assertGreater(m.parameter_count, 0)
        self.assertEqual(m.mapped_bytes, 0)
        mapped = dmin.load(_env.WORLD_MODEL, self_test=False, map_tables_larger_than=0)
        self.assertGreater(mapped.mapped_bytes, 0)
        cols = world_columns()
        np.testing.assert_array_equal(mapped.predict(cols), m.predict(cols))

    def test_load_errors(self):
        with self.assertRaisesRegex(dmin.Error, "nope.safetensors: cannot open file"):
            dmin.load("nope.safetensors")
        self.assertTrue(issubclass(dmin.Error, ValueError))
        with self.assertRaisesRegex(dmin.Error, "precision must be float32, bf16 or bf16-dnn, not 'fp16'"):
            dmin.load(_env.WORLD_MODEL, precision="fp16")

    def test_bf16_precision_within_its_bound(self):
        # The bound the C++ tests assert on trained models (README FAQ, weights_format.md section 7).
        for case in _env.CASES:
            with self.subTest(case):
                d = os.path.join(_env.CASES_DIR, case)
                samples = _env.load_json(os.path.join(d, "inputs.json"))["samples"]
                f32, bf16 = dmin.load(_env.fuxictr_model(case)), dmin.load(_env.fuxictr_model(case), precision="bf16")
                self.assertEqual((f32.precision, bf16.precision), ("float32", "bf16"))
                cols = _env.to_arrays(f32.spec, samples)
                diff = np.abs(bf16.predict(cols).astype(np.float64) - f32.predict(cols))
                self.assertLessEqual(float(diff.max()), 2e-3)
                self.assertLessEqual(float(diff.mean()), 2e-4)
                # With the DNN in bf16 too: its own, wider bound (dmin::kBf16DnnMaxAbsDiff, MeanAbsDiff).
                dnn = dmin.load(_env.fuxictr_model(case), precision="bf16-dnn")
                self.assertEqual(dnn.precision, "bf16-dnn")
                p = dnn.predict(cols)
                self.assertFalse(np.array_equal(p, bf16.predict(cols)))
                diff = np.abs(p.astype(np.float64) - f32.predict(cols))
                self.assertLessEqual(float(diff.max()), 1e-2)
                self.assertLessEqual(float(diff.mean()), 3e-3)


    def test_bf16_tables_within_their_bound(self):
        # tables="bf16" (LoadOptions::bf16_tables): half the table memory, scores within
        # dmin::kBf16TablesMaxAbsDiff (5e-3) and kBf16TablesMeanAbsDiff (1e-3) of float32 tables.
        with self.assertRaisesRegex(dmin.Error, "tables must be float32 or bf16, not 'fp8'"):
            dmin.load(_env.WORLD_MODEL, tables="fp8")
        for case in _env.CASES:
            with self.subTest(case):
                d = os.path.join(_env.CASES_DIR, case)
                samples = _env.load_json(os.path.join(d, "inputs.json"))["samples"]
                f32, half = dmin.load(_env.fuxictr_model(case)), dmin.load(_env.fuxictr_model(case), tables="bf16")
                self.assertEqual((f32.tables, half.tables), ("float32", "bf16"))
                self.assertLess(half.resident_bytes, f32.resident_bytes)
                cols = _env.to_arrays(f32.spec, samples)
                diff = np.abs(half.predict(cols).astype(np.float64) - f32.predict(cols))
                self.assertGreater(float(diff.max()), 0.0)
                self.assertLessEqual(float(diff.max()), 5e-3)
                self.assertLessEqual(float(diff.mean()), 1e-3)

class Predict(unittest.TestCase):
    def check_model(self, path, samples, ref_tol=1e-5):
        m = dmin.load(path)
        got = m.predict(_env.to_arrays(m.spec, samples))
        self.assertEqual(got.dtype, np.float32)
        self.assertEqual(got.shape, (len(samples),))
        if _env.CLI:
            np.testing.assert_array_equal(got, _env.cli_predict(path, samples), err_msg=path)
        ref = load_model(path).predict(samples)
        np.testing.assert_allclose(got, ref, rtol=ref_tol, atol=ref_tol, err_msg=path)
        return got

    def test_fuxictr_cases(self):
        for case in _env.CASES:
            with self.subTest(case):
                d = os.path.join(_env.CASES_DIR, case)
                samples = _env.load_json(os.path.join(d, "inputs.json"))["samples"]
                got = self.check_model(_env.fuxictr_model(case), samples)
                want = np.asarray(_env.load_json(os.path.join(d, "expected.json"))["y_pred"])
                self.assertLessEqual(float(np.abs(got - want).max()), 1e-5)

    def test_random_models(self):
        for name in _env.RANDOM:
            with self.subTest(name):
                path = _env.random_model(name)
                self.check_model(path, generate_samples(read_dmin_file(path)[0], n=40, seed=5))

    def test_world_model(self):
        cols = world_columns()
        samples = [{k: (v[i].tolist()) for k, v in cols.items()} for i in range(len(cols["item_id"]))]
        self.check_model(_env.WORLD_MODEL, samples)

    def test_layouts_and_conversions(self):
        m = dmin.load(_env.WORLD_MODEL)
        cols = world_columns()
        want = m.predict(cols)
        before = _dmin._conversions()
        # strided views of int64 arrays are read in place, not copied
        wide = {k: np.repeat(v[:, None], 2, axis=1)[:, 0] if v.ndim == 1 else np.asfortranarray(v) for k, v in cols.items()}
        np.testing.assert_array_equal(m.predict(wide), want)
        self.assertEqual(_dmin._conversions(), before)
        # other integer widths are converted once per column
        np.testing.assert_array_equal(m.predict(dict(cols, item_id=cols["item_id"].astype(np.int32))), want)
        self.assertEqual(_dmin._conversions(), before + 1)
        # sequences narrower than max_len are padded with 0
        short = dict(cols, item_hist=cols["item_hist"][:, :5], cate_hist=cols["cate_hist"][:, :5])
        padded = dict(short, item_hist=np.pad(short["item_hist"], ((0, 0), (0, 15))),
                      cate_hist=np.pad(short["cate_hist"], ((0, 0), (0, 15))))
        np.testing.assert_array_equal(m.predict(short), m.predict(padded))
        self.assertEqual(m.predict({k: v[:0] for k, v in cols.items()}).shape, (0,))

    def test_threads_share_a_model(self):
        m = dmin.load(_env.WORLD_MODEL)
        cols = world_columns(n_users=200, per_user=10)
        want = m.predict(cols)
        got = [None, None]
        half = len(want) // 2
        parts = [{k: v[:half] for k, v in cols.items()}, {k: v[half:] for k, v in cols.items()}]

        def run(i):
            for _ in range(3):
                got[i] = m.predict(parts[i])

        ts = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        np.testing.assert_array_equal(np.concatenate(got), want)


class ScorerTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.m = dmin.load(_env.WORLD_MODEL)
        cls.cols = world_columns()

    def user(self, i):
        return {k: self.cols[k][i] for k in USER_PART}

    def test_score_equals_predict(self):
        s = self.m.scorer()
        s.set_user(self.user(0))
        cands = {"item_id": self.cols["item_id"], "cate_id": self.cols["cate_id"]}
        got = s.score(cands)
        n = len(got)
        full = {k: (np.repeat(self.cols[k][:1], n, axis=0) if k in USER_PART else self.cols[k]) for k in FEATURES}
        np.testing.assert_array_equal(got, self.m.predict(full))
        # scalars and a short list for one user mean the same request
        s.set_user({"user_id": int(self.cols["user_id"][0]), "age_level": int(self.cols["age_level"][0]),
                    "gender": int(self.cols["gender"][0]), "hour": int(self.cols["hour"][0]),
                    "item_hist": np.trim_zeros(self.cols["item_hist"][0], "b").tolist(),
                    "cate_hist": self.cols["cate_hist"][0]})
        np.testing.assert_array_equal(s.score(cands), got)

    def test_explain(self):
        s = self.m.scorer()
        s.set_user(self.user(3))
        cands = {"item_id": self.cols["item_id"][:10], "cate_id": self.cols["cate_id"][:10]}
        p = s.score(cands)
        e = s.explain(cands, 4)
        self.assertAlmostEqual(e["probability"], float(p[4]), places=6)
        self.assertEqual(len(e["heads"]), 4)
        for h in e["heads"]:
            self.assertEqual(h["weights"].shape, (20,))
            self.assertAlmostEqual(float(h["weights"].sum()), 1.0, places=5)
        top = max(range(4), key=lambda i: e["heads"][i]["contribution"])
        self.assertEqual(e["top_head"], top)
        with self.assertRaisesRegex(dmin.Error, r"explain: candidate 10 out of range \(10 candidates\)"):
            s.explain(cands, 10)

    def test_scorer_per_thread(self):
        cands = {"item_id": self.cols["item_id"], "cate_id": self.cols["cate_id"]}
        serial = []
        for u in (1, 2):
            s = self.m.scorer()
            s.set_user(self.user(u))
            serial.append(s.score(cands))
        got = [None, None]

        def run(i):
            s = self.m.scorer()
            for _ in range(20):
                s.set_user(self.user(i + 1))
                got[i] = s.score(cands)

        ts = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        for a, b in zip(got, serial):
            np.testing.assert_array_equal(a, b)

    def test_scorer_shared_by_threads_is_refused(self):
        s = self.m.scorer()
        s.set_user(self.user(0))
        n = 200000
        big = {"item_id": np.resize(self.cols["item_id"], n), "cate_id": np.resize(self.cols["cate_id"], n)}
        small = {"item_id": self.cols["item_id"][:4], "cate_id": self.cols["cate_id"][:4]}
        want_small, want_big = s.score(small), s.score(big)
        refused, results = [], []

        def long_calls():
            for _ in range(2):
                try:
                    results.append(("big", s.score(big)))
                except dmin.Error as e:
                    refused.append(str(e))

        t = threading.Thread(target=long_calls)
        t.start()
        while t.is_alive():  # runs while the other thread is inside score() without the GIL
            try:
                results.append(("small", s.score(small)))
            except dmin.Error as e:
                refused.append(str(e))
        t.join()
        self.assertTrue(refused)
        self.assertEqual(set(refused), {"Scorer: used by two threads at once; create one scorer per thread with Model.scorer()"})
        for kind, got in results:  # the calls that ran were not disturbed
            np.testing.assert_array_equal(got, want_small if kind == "small" else want_big)


class Errors(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.m = dmin.load(_env.WORLD_MODEL)
        cls.cols = world_columns(n_users=4, per_user=2)

    def predict_error(self, cols, message):
        with self.assertRaises(dmin.Error) as cm:
            self.m.predict(cols)
        self.assertEqual(str(cm.exception), message)

    def test_predict_errors(self):
        c = self.cols
        self.predict_error(dict(c, price=c["hour"]), 'unknown feature "price"')
        self.predict_error({k: v for k, v in c.items() if k != "gender"}, "feature gender: missing")
        self.predict_error(dict(c, hour=c["hour"].astype(np.float64)), "feature hour: expected int64 ids, found a float64 array")
        self.predict_error(dict(c, hour=c["hour"][:, None]), "feature hour: expected an array of shape [n], found shape [8, 1]")
        self.predict_error(dict(c, item_hist=c["item_hist"][0]),
                           "feature item_hist: expected an array of shape [n, max_len], found shape [20]")
        self.predict_error(dict(c, item_hist=np.zeros((8, 21), np.int64)), "feature item_hist: sequence of length 21 exceeds max_len 20")
        self.predict_error(dict(c, item_id=c["item_id"][:3]), "feature item_id: 3 rows, but feature user_id has 8")
        bad = c["age_level"].copy()
        bad[5] = 99
        self.predict_error(dict(c, age_level=bad), "sample 5: feature age_level: id 99 out of range [0, 8)")
        bad = c["item_id"].copy()
        bad[2] = -1
        self.predict_error(dict(c, item_id=bad), "sample 2: candidate 0, feature item_id: id -1 out of range [0, 1002)")
        self.predict_error(dict(c, hour=np.array(["8"] * 8)),
                           "feature hour: raw tokens need a vocabulary, and the model carries none for this feature (export with --vocab)")

    def test_scorer_errors(self):
        s = self.m.scorer()
        cands = {"item_id": self.cols["item_id"], "cate_id": self.cols["cate_id"]}
        with self.assertRaisesRegex(dmin.Error, r"^Scorer: set_user\(\) must be called before scoring$"):
            s.score(cands)
        user = {k: self.cols[k][0] for k in USER_PART}
        with self.assertRaisesRegex(dmin.Error, "^feature hour: missing$"):
            s.set_user({k: v for k, v in user.items() if k != "hour"})
        with self.assertRaisesRegex(dmin.Error, r"^set_user: expected one sample, found 8 rows$"):
            s.set_user({k: self.cols[k] for k in USER_PART})
        s.set_user(user)
        with self.assertRaisesRegex(dmin.Error, r"^feature hour: not a candidate feature \(role context\)$"):
            s.score(dict(cands, hour=self.cols["hour"]))
        with self.assertRaisesRegex(dmin.Error, "^feature cate_id: missing$"):
            s.score({"item_id": self.cols["item_id"]})
        bad = self.cols["cate_id"].copy()
        bad[3] = 10**6
        with self.assertRaisesRegex(dmin.Error, r"^candidate 3, feature cate_id: id 1000000 out of range \[0, 32\)$"):
            s.score(dict(cands, cate_id=bad))
        self.assertEqual(s.score(cands).shape, (8,))  # a failed call leaves the scorer usable


class RawTokens(unittest.TestCase):
    """A copy of the world model with vocabularies: string arrays map through them like `dmin predict`."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="dmin-py-vocab-")
        spec, tensors, reference, _ = read_dmin_file(_env.WORLD_MODEL)
        cats = {"__PAD__": 0}
        cats.update(("cat_%02d" % c, c) for c in range(1, 31))
        hours = {str(h): h for h in range(1, 25)}
        cls.vocab = {"cate_id": {"tokens": cats, "oov_idx": 31, "pad_idx": 0},
                     "hour": {"tokens": hours, "oov_idx": 25, "pad_idx": 0}}
        cls.path = os.path.join(cls.tmp, "world_vocab.safetensors")
        with open(cls.path, "wb") as fh:
            fh.write(encode_dmin(spec, tensors, reference, cls.vocab))
        cls.m = dmin.load(cls.path)
        cls.cols = world_columns(n_users=10, per_user=3)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_tokens_equal_ids(self):
        c = self.cols
        name = np.vectorize(lambda i: "cat_%02d" % i if i else "")
        raw = dict(c, cate_id=name(c["cate_id"]), hour=c["hour"].astype(str), cate_hist=name(c["cate_hist"]))
        np.testing.assert_array_equal(self.m.predict(raw), self.m.predict(c))
        # ragged lists of tokens per row, unknown tokens -> OOV, "" in a sequence -> padding
        ragged = np.empty(len(c["item_id"]), dtype=object)
        for i, row in enumerate(c["cate_hist"]):
            ragged[i] = ["cat_%02d" % x for x in row if x]
        np.testing.assert_array_equal(self.m.predict(dict(raw, cate_hist=ragged)), self.m.predict(c))
        unknown = dict(c, cate_id=np.array(["no such category"] * len(c["item_id"])))
        np.testing.assert_array_equal(self.m.predict(unknown), self.m.predict(dict(c, cate_id=np.full_like(c["cate_id"], 31))))
        if _env.CLI:
            samples = [{k: (v[i].tolist()) for k, v in raw.items()} for i in range(len(c["item_id"]))]
            for s in samples:
                s["cate_hist"] = [t for t in s["cate_hist"] if t]
            np.testing.assert_array_equal(self.m.predict(raw), _env.cli_predict(self.path, samples))

    def test_scorer_tokens(self):
        s = self.m.scorer()
        c = self.cols
        s.set_user({"user_id": 3, "age_level": 2, "gender": 1, "hour": "7", "item_hist": [5, 9], "cate_hist": ["cat_03", "cat_04"]})
        a = s.score({"item_id": c["item_id"], "cate_id": np.array(["cat_%02d" % x for x in c["cate_id"]])})
        s.set_user({"user_id": 3, "age_level": 2, "gender": 1, "hour": 7, "item_hist": [5, 9], "cate_hist": [3, 4]})
        np.testing.assert_array_equal(a, s.score({"item_id": c["item_id"], "cate_id": c["cate_id"]}))


if __name__ == "__main__":
    unittest.main()
