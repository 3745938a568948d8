"""Smoke test of the synthetic multi-interest world (python/world): a tiny world is well formed and
one epoch of the reference DMIN on it lowers the loss. Fast (a few seconds)."""
import unittest

from tests import _util  # noqa: F401  (puts python/ on sys.path)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from dmin_ref.model import DMIN  # noqa: E402
from world.generate import CATE, CATE_HIST, ITEM, ITEM_HIST, World, roc_auc, to_samples  # noqa: E402
from world.train import mean_loss, recalibrate_dice, train_epoch, world_spec  # noqa: E402


def tiny_world():
    return World(seed=3, n_items=120, n_cats=8, n_user_buckets=20, max_len=12)


class WorldDataTest(unittest.TestCase):
    def test_samples_are_well_formed(self):
        w = tiny_world()
        cols, users = w.samples(300, 3, seed=5)
        L = w.cfg["max_len"]
        self.assertEqual(cols[ITEM_HIST].shape, (900, L))
        # categories of candidates and histories follow the item -> category map; padding maps to 0
        np.testing.assert_array_equal(cols[CATE], w.item_cat[cols[ITEM]])
        np.testing.assert_array_equal(cols[CATE_HIST], w.item_cat[cols[ITEM_HIST]])
        # post-padded: no id after the first 0
        h = cols[ITEM_HIST] != 0
        self.assertTrue(np.all(h[:, 1:] <= h[:, :-1]))
        lengths = h.sum(1)
        self.assertTrue((lengths == 0).any() and (lengths == L).any() and ((lengths > 0) & (lengths < 5)).any())
        # 2-4 interests with weights summing to 1
        m = (users["interest_cats"] > 0).sum(1)
        self.assertTrue(set(np.unique(m)) <= {2, 3, 4})
        np.testing.assert_allclose(users["interest_weights"].sum(1), 1.0)
        # ids inside the vocabularies (0 padding .. n+1 OOV) and labels follow the hidden model
        for f, v in w.vocab_sizes().items():
            self.assertTrue(cols[f].min() >= (1 if f not in (ITEM_HIST, CATE_HIST) else 0) and cols[f].max() < v, f)
        self.assertGreater(roc_auc(cols["label"], cols["p_true"]), 0.7)
        # same seed, same data
        again, _ = tiny_world().samples(300, 3, seed=5)
        np.testing.assert_array_equal(again[ITEM_HIST], cols[ITEM_HIST])
        np.testing.assert_array_equal(again["label"], cols["label"])
        s = to_samples(cols, [0])[0]
        self.assertEqual(len(s[ITEM_HIST]), L)
        self.assertIsInstance(s[CATE], int)


class WorldTrainingTest(unittest.TestCase):
    def test_one_epoch_lowers_the_loss(self):
        torch.manual_seed(0)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            w = tiny_world()
            cols, _ = w.samples(500, 4, seed=1)
            spec = world_spec(w, embedding_dim=4, num_heads=2)
            roles = {f["name"]: f["role"] for f in spec["features"]}
            self.assertEqual((roles[ITEM], roles[CATE], roles["hour"]), ("candidate", "candidate", "context"))
            model = DMIN(spec)
            recalibrate_dice(model, cols, batches=4, batch_size=256)
            before = mean_loss(model, cols)
            opt = torch.optim.Adam(model.parameters(), lr=3e-3)
            losses = train_epoch(model, opt, cols, batch_size=64, rng=np.random.RandomState(0))
            recalibrate_dice(model, cols, batches=4, batch_size=256)
            after = mean_loss(model, cols)
            self.assertEqual(len(losses), 2000 // 64)
            self.assertTrue(np.isfinite(losses).all())
            self.assertLess(after, before - 0.01, "loss %.4f -> %.4f" % (before, after))
        finally:
            torch.set_num_threads(threads)


if __name__ == "__main__":
    unittest.main()
