"""Independent float64 numpy re-computation of DMIN inference, one sample at a time, straight from
REFERENCE_SEMANTICS.md section 2, reading weights by their dmin tensor names.  Used to cross-check the
torch reference module and the fixture files."""

import math

import numpy as np

from dmin_ref.spec import attention_mlp_layout, dnn_layout

_erf = np.vectorize(math.erf)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _softplus(x):
    return np.where(x > 20.0, x, np.log1p(np.exp(np.minimum(x, 20.0))))


def activation(name, x, T, prefix):
    if name is None or name == "Identity":
        return x
    if name == "ReLU":
        return np.maximum(x, 0.0)
    if name == "Sigmoid":
        return _sigmoid(x)
    if name == "Tanh":
        return np.tanh(x)
    if name == "Softmax":
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    if name == "PReLU":
        w = T[prefix + "weight"]
        return np.maximum(x, 0.0) + w * np.minimum(x, 0.0)
    if name == "Dice":
        mean, var, alpha = T[prefix + "bn.running_mean"], T[prefix + "bn.running_var"], T[prefix + "alpha"]
        p = _sigmoid((x - mean) / np.sqrt(var + 1e-9))
        return p * x + alpha * (1.0 - p) * x
    if name == "LeakyReLU":
        return np.where(x >= 0, x, 0.01 * x)
    if name == "ELU":
        return np.where(x > 0, x, np.expm1(np.minimum(x, 0.0)))
    if name == "SELU":
        a, s = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
        return s * np.where(x > 0, x, a * np.expm1(np.minimum(x, 0.0)))
    if name == "CELU":
        return np.maximum(x, 0.0) + np.minimum(0.0, np.expm1(np.minimum(x, 0.0)))
    if name == "GELU":
        return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))
    if name == "SiLU":
        return x * _sigmoid(x)
    if name == "Mish":
        return x * np.tanh(_softplus(x))
    if name == "Softplus":
        return _softplus(x)
    if name == "Softsign":
        return x / (1.0 + np.abs(x))
    if name == "Hardswish":
        return x * np.clip(x + 3.0, 0.0, 6.0) / 6.0
    if name == "Hardsigmoid":
        return np.clip(x + 3.0, 0.0, 6.0) / 6.0
    if name == "Hardtanh":
        return np.clip(x, -1.0, 1.0)
    if name == "ReLU6":
        return np.clip(x, 0.0, 6.0)
    if name == "LogSigmoid":
        return -np.logaddexp(0.0, -x)
    if name == "Tanhshrink":
        return x - np.tanh(x)
    if name == "Softshrink":
        return np.where(x > 0.5, x - 0.5, np.where(x < -0.5, x + 0.5, 0.0))
    if name == "Hardshrink":
        return np.where(np.abs(x) > 0.5, x, 0.0)
    if name == "RReLU":
        return np.where(x >= 0, x, x * (1.0 / 8 + 1.0 / 3) / 2.0)
    raise ValueError(name)


def mlp(x, layout, T, prefix):
    for idx, kind, width, extra in layout:
        p = "%s%d." % (prefix, idx)
        if kind == "linear":
            x = x @ T[p + "weight"].T + T[p + "bias"]
        elif kind == "batchnorm":
            x = (x - T[p + "running_mean"]) / np.sqrt(T[p + "running_var"] + 1e-5) * T[p + "weight"] + T[p + "bias"]
        elif kind == "act":
            x = activation(extra, x, T, p)
    return x


def layer_norm(x, w, b):
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + 1e-5) * w + b


def softmax_rows(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def forward_sample(spec, T, sample):
    """T: dict name -> float64 arrays (dmin tensor names). Returns dict like the module's intermediates."""
    T = {k: np.asarray(v, dtype=np.float64) for k, v in T.items()}
    feats = {f["name"]: f for f in spec["features"]}
    H = spec["num_heads"]

    def emb(name):
        f = feats[name]
        W = T[f["table"]]
        v = sample[name]
        if f["type"] == "numeric":
            return float(np.float32(v)) * W[:, 0]
        if f["type"] == "sequence":
            return W[np.asarray(v, dtype=np.int64)]
        return W[int(v)]

    concat = []
    branches = []
    for i, br in enumerate(spec["branches"]):
        t = np.concatenate([emb(n) for n in br["target"]])
        s0 = np.concatenate([emb(n) for n in br["sequence"]], axis=-1)
        L, D = s0.shape
        hd = D // H
        valid = np.asarray(sample[br["sequence"][0]]) != 0
        allowed = np.zeros((L, L), dtype=bool)
        for a in range(L):
            for b in range(L):
                allowed[a, b] = b <= a and (b == a or valid[b])
        if spec["use_behavior_refiner"]:
            p = "behavior_refiner.%d." % i
            W, bias = T[p + "attention.in_proj_weight"], T[p + "attention.in_proj_bias"]
            q = s0 @ W[:D].T + bias[:D]
            k = s0 @ W[D:2 * D].T + bias[D:2 * D]
            v = s0 @ W[2 * D:].T + bias[2 * D:]
            if spec["refiner_mask"] == "strict":
                M = np.where(allowed, 0.0, -np.inf)
            else:
                M = np.where(allowed, 0.0, 1.0)
            heads = []
            for h in range(H):
                sl = slice(h * hd, (h + 1) * hd)
                a = softmax_rows(q[:, sl] @ k[:, sl].T / math.sqrt(hd) + M)
                heads.append(a @ v[:, sl])
            o = np.concatenate(heads, axis=-1) @ T[p + "attention.out_proj.weight"].T + T[p + "attention.out_proj.bias"]
            s = o + s0
            if spec["layer_norm"]:
                s = layer_norm(s, T[p + "layer_norm.weight"], T[p + "layer_norm.bias"])
            r = np.maximum(s @ T[p + "ffn.0.weight"].T + T[p + "ffn.0.bias"], 0) @ T[p + "ffn.2.weight"].T \
                + T[p + "ffn.2.bias"] + s
        else:
            r = s0
        p = "multi_interest_extractor.%d." % i
        QKV = r @ T[p + "W_qkv.weight"].T
        layout = attention_mlp_layout(spec, D)
        zs, ws, interests = [], [], []
        for h in range(H):
            sl = slice(h * hd, (h + 1) * hd)
            Qh, Kh, Vh = QKV[:, sl], QKV[:, D:][:, sl], QKV[:, 2 * D:][:, sl]
            S = Qh @ Kh.T / math.sqrt(hd)
            S = np.where(allowed, S, -1e9)
            O = softmax_rows(S) @ Vh
            u = O @ T[p + "W_o.%d.weight" % h].T + r
            if spec["layer_norm"]:
                u = layer_norm(u, T[p + "layer_norm.%d.weight" % h], T[p + "layer_norm.%d.bias" % h])
            f = p + "ffn.%d." % h
            z = np.maximum(u @ T[f + "0.weight"].T + T[f + "0.bias"], 0) @ T[f + "2.weight"].T + T[f + "2.bias"] + u
            ta = p + "target_attention.%d." % h
            q = np.tile(t, (L, 1))
            if spec["use_pos_emb"]:
                q = np.concatenate([q, T[ta + "pos_emb"]], axis=-1) @ T[ta + "W_proj.weight"].T + T[ta + "W_proj.bias"]
            feat = np.concatenate([q, z, q - z, q * z], axis=-1)
            e = mlp(feat, layout, T, ta + "attn_mlp.mlp.")[:, 0]
            e = np.where(valid, e, -1e9)
            w = softmax_rows(e)
            interest = w @ z
            zs.append(z)
            ws.append(w)
            interests.append(interest)
        concat += interests
        if spec["enable_sum_pooling"]:
            sp = s0.sum(axis=0)
            concat += [sp, t * sp]
        branches.append({"refined": r, "z": np.stack(zs), "attn": np.stack(ws), "interests": np.stack(interests)})
    for f in spec["features"]:
        if f["in_dnn"]:
            concat.append(emb(f["name"]))
    x = np.concatenate(concat)
    logit = mlp(x[None, :], dnn_layout(spec), T, "dnn.mlp.")[0, 0]
    prob = 1.0 / (1.0 + math.exp(-logit)) if spec["task"] == "binary_classification" else logit
    return {"branches": branches, "dnn_input": x, "logit": logit, "prob": prob}
