"""Sample generation in `dmin predict` form: {feature: id | float | [ids of length max_len]}."""

from collections import OrderedDict

import numpy as np

# sequence patterns (per branch, decided on the branch's first sequence field)
EMPTY, POST, PRE, GAP, FULL = "empty", "post", "pre", "gap", "full"


def _valid_id(rng, vocab, high=False):
    if vocab <= 1:
        return 0
    if high:
        return vocab - 1
    return int(rng.randint(1, vocab))


def _pattern_mask(rng, pattern, L):
    """Boolean list: True = real token."""
    if pattern == EMPTY:
        return [False] * L
    if pattern == FULL or L == 1:
        return [True] * L
    if pattern == POST:
        n = int(rng.randint(1, L))
        return [True] * n + [False] * (L - n)
    if pattern == PRE:
        n = int(rng.randint(1, L))
        return [False] * (L - n) + [True] * n
    if pattern == GAP:
        while True:
            m = [bool(x) for x in rng.rand(L) < 0.6]
            if any(m) and not all(m) and (L < 3 or m != sorted(m, reverse=True)):
                return m
    raise ValueError(pattern)


def classify_sequence(ids):
    nz = [x != 0 for x in ids]
    if not any(nz):
        return EMPTY
    if all(nz):
        return FULL
    return "partial"


# one recipe per sample: (sequence pattern for branch 0, categorical mode, deviate other fields)
_RECIPES = [
    (EMPTY, "random", False),
    (POST, "random", False),
    (PRE, "random", True),
    (GAP, "random", True),
    (FULL, "random", False),
    (FULL, "max", False),
    (POST, "zero", True),
    ("mixed", "random", True),
]


def generate_samples(spec, n=8, seed=0):
    """Deterministic samples covering all-padding, post/pre/gapped padding, full length, id 0 and
    the max id.  With several branches, sample 7+ use a different pattern per branch.  Fields after
    the first of a sequence group sometimes carry ids where the first field has padding (and vice
    versa), since padding is decided by the first field only."""
    rng = np.random.RandomState(seed)
    feats = spec["features"]
    fby = OrderedDict((f["name"], f) for f in feats)
    group_of = {}
    for bi, br in enumerate(spec["branches"]):
        for j, name in enumerate(br["sequence"]):
            group_of[name] = (bi, j)
    patterns_all = [EMPTY, POST, PRE, GAP, FULL]
    out = []
    for k in range(n):
        base, catmode, deviate = _RECIPES[k % len(_RECIPES)]
        if k >= len(_RECIPES):
            base = patterns_all[int(rng.randint(len(patterns_all)))]
            catmode = ["random", "zero", "max"][int(rng.randint(3))]
        branch_masks = {}
        for bi, br in enumerate(spec["branches"]):
            L = fby[br["sequence"][0]]["max_len"]
            pat = base
            if base == "mixed":
                pat = patterns_all[(bi * 2 + k) % len(patterns_all)]
            branch_masks[bi] = _pattern_mask(rng, pat, L)
        s = OrderedDict()
        for f in feats:
            name, t = f["name"], f["type"]
            if t == "numeric":
                s[name] = 0.0 if catmode == "zero" else float(round(rng.uniform(-2.0, 3.0), 3))
            elif t == "categorical":
                if catmode == "zero":
                    s[name] = 0
                elif catmode == "max":
                    s[name] = f["vocab_size"] - 1
                else:
                    s[name] = int(rng.randint(0, f["vocab_size"])) if k == 0 else _valid_id(rng, f["vocab_size"])
            else:
                L = f["max_len"]
                V = f["vocab_size"]
                if name in group_of:
                    bi, j = group_of[name]
                    mask = list(branch_masks[bi])
                    if j > 0 and deviate and L > 1:
                        pos = int(rng.randint(L))
                        mask[pos] = not mask[pos]
                else:
                    mask = _pattern_mask(rng, POST, L)
                ids = [_valid_id(rng, V) if m else 0 for m in mask]
                if catmode == "max" and any(mask):
                    ids[mask.index(True)] = V - 1
                s[name] = ids
        out.append(s)
    return out


def select_reference_samples(spec, samples, n=8):
    """First n samples, plus the first all-padding / partial / full-length sample (of branch 0's
    first sequence field) if the first n lack one."""
    chosen = list(range(min(n, len(samples))))
    seq0 = spec["branches"][0]["sequence"][0]
    def kind(s):
        v = s.get(seq0) if isinstance(s, dict) else None
        return classify_sequence(v) if isinstance(v, list) and v else None

    have = {kind(samples[i]) for i in chosen}
    for want in (EMPTY, "partial", FULL):
        if want in have:
            continue
        for i, s in enumerate(samples):
            if i not in chosen and kind(s) == want:
                chosen.append(i)
                have.add(want)
                break
    return [samples[i] for i in chosen]


def normalize_sample(spec, sample, where="sample"):
    """Validate one predict-form sample against the spec; returns an OrderedDict in feature order."""
    out = OrderedDict()
    for f in spec["features"]:
        name = f["name"]
        if name not in sample:
            raise ValueError("%s: missing feature %r" % (where, name))
        v = sample[name]
        if f["type"] == "numeric":
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ValueError("%s: numeric feature %r must be a number, got %r" % (where, name, v))
            out[name] = float(v)
        elif f["type"] == "categorical":
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < f["vocab_size"]:
                raise ValueError("%s: categorical feature %r must be an id in [0, %d), got %r"
                                 % (where, name, f["vocab_size"], v))
            out[name] = int(v)
        else:
            if not isinstance(v, list) or len(v) != f["max_len"]:
                raise ValueError("%s: sequence feature %r must be a list of exactly %d ids" % (where, name, f["max_len"]))
            for x in v:
                if isinstance(x, bool) or not isinstance(x, int) or not 0 <= x < f["vocab_size"]:
                    raise ValueError("%s: sequence feature %r has id %r outside [0, %d)" % (where, name, x, f["vocab_size"]))
            out[name] = [int(x) for x in v]
    return out
