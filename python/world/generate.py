"""Synthetic "multi-interest world" for DMIN (click-through rate with behaviour sequences).

The world
  * items 1..n_items, each in one category 1..n_cats (category sizes vary), with a quality and a
    within-category popularity;
  * users with a profile (user_id bucket, age_level, gender) and 2-4 latent interests over categories
    with Dirichlet weights, plus one "stale" category they used to like;
  * a behaviour sequence per user, most recent first and post-padded with 0 to max_len: each event
    picks an interest by weight and a popular item of that category; older positions drift to the
    stale category; a few events are random noise; some users have short or empty histories;
  * a context feature `hour` (1..24);
  * the click label of (user, candidate) is Bernoulli(sigmoid(logit)) with
        logit = bias + [cat(cand) in interests] * (strength * (0.5 + weight)) + 0.8 * quality(cand)
                + profile x category affinity + hour-part x category affinity + user bucket bias
                + re-click bonus (candidate already in the history) + noise,
    so the label follows the interest that matches the candidate's category: a user with several
    interests needs several interest vectors (or target attention that finds the matching ones).

Feature ids follow FuxiCTR's encoding: 0 = padding, 1..n = values, n+1 = OOV (never produced).
Everything is driven by numpy RandomState seeds: the same config and seed give the same data.
"""

from collections import OrderedDict

import numpy as np

# Model-facing feature names (the DMIN spec uses these).
USER_ID, AGE, GENDER, HOUR = "user_id", "age_level", "gender", "hour"
ITEM, CATE, ITEM_HIST, CATE_HIST = "item_id", "cate_id", "item_hist", "cate_hist"
FEATURES = (USER_ID, AGE, GENDER, HOUR, ITEM, CATE, ITEM_HIST, CATE_HIST)

DEFAULT_CONFIG = OrderedDict([
    ("n_items", 1000), ("n_cats", 30), ("n_user_buckets", 200), ("n_age", 6), ("n_gender", 2), ("n_hours", 24),
    ("max_len", 20), ("p_empty", 0.07), ("p_short", 0.18),            # history length mix
    ("p_noise_event", 0.08), ("p_stale_oldest", 0.5),                  # sequence noise / drift
    ("p_cand_interest", 0.45), ("p_cand_stale", 0.10),                 # candidate sampling
    ("bias", -2.0), ("strength", 3.0), ("quality", 0.8), ("profile_affinity", 0.35), ("hour_affinity", 0.5),
    ("bucket_bias", 0.3), ("reclick", 0.6), ("noise", 0.3),
])


def category_name(c):
    return "cat_%02d" % c


class World:
    """Items, categories and the hidden click model. Users are drawn with `users()`."""

    def __init__(self, seed=0, **overrides):
        cfg = OrderedDict(DEFAULT_CONFIG)
        for k, v in overrides.items():
            if k not in cfg:
                raise KeyError("unknown world option %r" % k)
            cfg[k] = v
        self.cfg = cfg
        self.seed = seed
        rng = np.random.RandomState(seed)
        I, C = cfg["n_items"], cfg["n_cats"]
        if I < 2 * C:
            raise ValueError("need at least 2 items per category")
        # category of each item (index 0 = padding -> 0); every category gets >= 2 items
        share = rng.dirichlet(np.full(C, 2.0))
        cats = np.concatenate([np.repeat(np.arange(1, C + 1), 2), 1 + rng.choice(C, size=I - 2 * C, p=share)])
        rng.shuffle(cats)
        self.item_cat = np.concatenate([[0], cats]).astype(np.int64)
        self.quality = np.concatenate([[0.0], rng.normal(0.0, 0.5, size=I)])
        self.items_of = [np.zeros(0, dtype=np.int64)] + [np.flatnonzero(self.item_cat == c) for c in range(1, C + 1)]
        # within-category popularity: Zipf-like over a random order, times exp(quality)
        self.pop_of = [np.zeros(0)]
        for c in range(1, C + 1):
            its = self.items_of[c]
            rank = rng.permutation(len(its)) + 1
            w = np.exp(0.5 * self.quality[its]) / rank ** 0.7
            self.pop_of.append(w / w.sum())
        # hidden affinities: category x age, category x gender, category x hour part; bucket bias
        self.cat_age = rng.normal(0.0, 1.0, size=(C + 1, cfg["n_age"] + 1))
        self.cat_gender = rng.normal(0.0, 1.0, size=(C + 1, cfg["n_gender"] + 1))
        self.cat_daypart = rng.normal(0.0, 1.0, size=(C + 1, 4))
        self.bucket_bias = rng.normal(0.0, 1.0, size=cfg["n_user_buckets"] + 1)
        self.cat_pop = rng.dirichlet(np.full(C, 3.0))

    # -- vocabularies (FuxiCTR style: 0 padding, n+1 OOV) -------------------------------------------
    def vocab_sizes(self):
        c = self.cfg
        return OrderedDict([(USER_ID, c["n_user_buckets"] + 2), (AGE, c["n_age"] + 2), (GENDER, c["n_gender"] + 2),
                            (HOUR, c["n_hours"] + 2), (ITEM, c["n_items"] + 2), (CATE, c["n_cats"] + 2)])

    def category_names(self):
        return [""] + [category_name(c) for c in range(1, self.cfg["n_cats"] + 1)]

    # -- users ----------------------------------------------------------------------------------------
    def users(self, n, seed):
        """n users as a dict of arrays: profile, interests (cats [n, 4], weights [n, 4], 0 = unused),
        stale category and behaviour history (item/cate ids [n, max_len], most recent first)."""
        cfg = self.cfg
        rng = np.random.RandomState(seed)
        C, L = cfg["n_cats"], cfg["max_len"]
        u = OrderedDict()
        u["bucket"] = 1 + rng.randint(cfg["n_user_buckets"], size=n)
        u["age"] = 1 + rng.randint(cfg["n_age"], size=n)
        u["gender"] = 1 + rng.randint(cfg["n_gender"], size=n)
        icats = np.zeros((n, 4), dtype=np.int64)
        iw = np.zeros((n, 4))
        stale = np.zeros(n, dtype=np.int64)
        hist = np.zeros((n, L), dtype=np.int64)
        for k in range(n):
            # the profile nudges which categories a user likes (so profile features carry a little signal)
            logits = np.log(self.cat_pop) + 0.5 * self.cat_age[1:, u["age"][k]] + 0.5 * self.cat_gender[1:, u["gender"][k]]
            p = np.exp(logits - logits.max())
            p /= p.sum()
            m = int(rng.randint(2, 5))
            chosen = 1 + rng.choice(C, size=m + 1, replace=False, p=p)
            w = np.sort(rng.dirichlet(np.full(m, 1.5)))[::-1]
            icats[k, :m] = chosen[:m]
            iw[k, :m] = w
            stale[k] = chosen[m]
            # history length: empty, short (1-4) or 5..L
            r = rng.rand()
            n_ev = 0 if r < cfg["p_empty"] else (int(rng.randint(1, 5)) if r < cfg["p_empty"] + cfg["p_short"]
                                                 else int(rng.randint(5, L + 1)))
            for pos in range(n_ev):  # pos 0 = most recent
                x = rng.rand()
                p_stale = cfg["p_stale_oldest"] * pos / max(1, L - 1)
                if x < cfg["p_noise_event"]:
                    item = 1 + int(rng.randint(cfg["n_items"]))
                else:
                    c = stale[k] if x < cfg["p_noise_event"] + p_stale else icats[k, rng.choice(m, p=w)]
                    item = int(rng.choice(self.items_of[c], p=self.pop_of[c]))
                hist[k, pos] = item
        u["interest_cats"], u["interest_weights"], u["stale"] = icats, iw, stale
        u["item_hist"] = hist
        u["cate_hist"] = self.item_cat[hist]  # padding 0 -> category 0
        return u

    # -- (user, candidate, context) samples with labels --------------------------------------------------
    def samples(self, n_users, per_user, seed):
        """Columnar samples {feature: array} (model features, predict-form ids) plus 'label',
        'p_true' (the world's click probability) and 'user' (row into the users dict), and the users."""
        cfg = self.cfg
        rng = np.random.RandomState(seed + 7919)
        u = self.users(n_users, seed)
        n = n_users * per_user
        row = np.repeat(np.arange(n_users), per_user)
        cand = np.zeros(n, dtype=np.int64)
        hour = 1 + rng.randint(cfg["n_hours"], size=n)
        for s in range(n):
            k = row[s]
            x = rng.rand()
            m = int((u["interest_cats"][k] > 0).sum())
            if x < cfg["p_cand_interest"]:
                c = u["interest_cats"][k, rng.randint(m)]
            elif x < cfg["p_cand_interest"] + cfg["p_cand_stale"]:
                c = u["stale"][k]
            else:
                c = 0
            if c:
                cand[s] = int(rng.choice(self.items_of[c], p=self.pop_of[c]))
            else:
                cand[s] = 1 + int(rng.randint(cfg["n_items"]))
        ccat = self.item_cat[cand]
        logit = self.click_logit(u, row, cand, ccat, hour)
        logit = logit + rng.normal(0.0, cfg["noise"], size=n)
        p = 1.0 / (1.0 + np.exp(-logit))
        label = (rng.rand(n) < p).astype(np.float32)
        cols = OrderedDict()
        cols[USER_ID] = u["bucket"][row]
        cols[AGE] = u["age"][row]
        cols[GENDER] = u["gender"][row]
        cols[HOUR] = hour
        cols[ITEM] = cand
        cols[CATE] = ccat
        cols[ITEM_HIST] = u["item_hist"][row]
        cols[CATE_HIST] = u["cate_hist"][row]
        cols["label"] = label
        cols["p_true"] = p
        cols["user"] = row
        return cols, u

    def click_logit(self, u, row, cand, ccat, hour):
        cfg = self.cfg
        ic, iw = u["interest_cats"][row], u["interest_weights"][row]
        match = (ic == ccat[:, None])
        w = (iw * match).sum(1)
        logit = cfg["bias"] + cfg["strength"] * match.any(1) * (0.5 + w)
        logit = logit + cfg["quality"] * self.quality[cand]
        logit = logit + cfg["profile_affinity"] * (self.cat_age[ccat, u["age"][row]] + self.cat_gender[ccat, u["gender"][row]])
        logit = logit + cfg["hour_affinity"] * self.cat_daypart[ccat, (hour - 1) * 4 // cfg["n_hours"]]
        logit = logit + cfg["bucket_bias"] * self.bucket_bias[u["bucket"][row]]
        logit = logit + cfg["reclick"] * (u["item_hist"][row] == cand[:, None]).any(1)
        return logit


def to_samples(cols, index=None):
    """Columnar samples -> list of dicts in `dmin predict` form (model features only, python ints)."""
    n = len(cols[ITEM])
    idx = range(n) if index is None else index
    out = []
    for s in idx:
        d = OrderedDict()
        for f in FEATURES:
            v = cols[f][s]
            d[f] = [int(x) for x in v] if np.ndim(v) else int(v)
        out.append(d)
    return out


def roc_auc(labels, scores):
    """ROC AUC with tied scores counted as 1/2 (Mann-Whitney U with average ranks)."""
    y = np.asarray(labels, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64)
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    ss = s[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and ss[j + 1] == ss[i]:
            j += 1
        ranks[order[i:j + 1]] = 0.5 * (i + j) + 1.0
        i = j + 1
    npos = y.sum()
    nneg = len(y) - npos
    if npos == 0 or nneg == 0:
        return float("nan")
    return float((ranks[y == 1].sum() - npos * (npos + 1) / 2.0) / (npos * nneg))
