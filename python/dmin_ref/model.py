"""Reference PyTorch implementation of FuxiCTR's DMIN (REFERENCE_SEMANTICS.md), built from a dmin spec.

The module tree and state_dict keys are identical to FuxiCTR's DMIN (2.0.3 .. 2.3.10), so a FuxiCTR
checkpoint (minus aux_net keys) loads with strict=True.  The eval-mode forward reproduces FuxiCTR's
numbers, quirks included:

* behavior refiner: nn.MultiheadAttention parameters, float mask 1.0 on blocked logits (additive,
  torch <= 1.13 / >= 2.1 semantics); refiner_mask="strict" excludes blocked logits (torch 2.0.x);
* extractor / target attention: blocked scores replaced by -1e9 (all-padding -> uniform weights);
* Dice / BatchNorm with running statistics in eval, MLP_Block Sequential indices.

The refiner attention is computed explicitly from the MultiheadAttention parameters (same op order
as torch 1.13's slow path) so that the result does not depend on the torch version's fast path.
Training mode works (dropouts active, BatchNorm/Dice batch statistics); no auxiliary loss.
"""

import copy
import math
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .spec import (EMB_PREFIX, SpecError, attention_mlp_layout, branch_geometry, check_tensor_shapes,
                   dnn_layout, expected_tensor_shapes, feature_by_name, validate_spec)


# ----------------------------------------------------------------------------------------------
# activations

class Dice(nn.Module):
    """Dice(x) = p*x + alpha*(1-p)*x, p = sigmoid(BatchNorm1d(x)) with affine=False, eps=1e-9."""

    def __init__(self, input_dim, eps=1e-9):
        super().__init__()
        self.bn = nn.BatchNorm1d(input_dim, affine=False, eps=eps, momentum=0.01)
        self.alpha = nn.Parameter(torch.zeros(input_dim))

    def forward(self, x):
        p = torch.sigmoid(self.bn(x))
        return p * x + self.alpha * (1 - p) * x


def make_activation(name, units):
    """Module for a canonical activation name (FuxiCTR get_activation semantics)."""
    if name == "ReLU":
        return nn.ReLU()
    if name == "Sigmoid":
        return nn.Sigmoid()
    if name == "Tanh":
        return nn.Tanh()
    if name == "Softmax":
        return nn.Softmax(dim=-1)
    if name == "PReLU":
        return nn.PReLU(units, init=0.1)
    if name == "Dice":
        return Dice(units)
    cls = getattr(nn, name, None)
    if cls is None:
        raise SpecError("activation %r is not available in this torch version" % name)
    return cls()


# ----------------------------------------------------------------------------------------------
# building blocks

class MLPBlock(nn.Module):
    """FuxiCTR MLP_Block: attribute `mlp` = nn.Sequential laid out by spec.mlp_layout."""

    def __init__(self, layout, output_activation=None):
        super().__init__()
        layers = []
        for _, kind, width, extra in layout:
            if kind == "linear":
                layers.append(nn.Linear(width[0], width[1]))
            elif kind == "batchnorm":
                layers.append(nn.BatchNorm1d(width))
            elif kind == "act":
                layers.append(make_activation(extra, width))
            elif kind == "dropout":
                layers.append(nn.Dropout(p=extra))
            else:  # pragma: no cover
                raise ValueError(kind)
        self._num_core = len(layers)
        if output_activation is not None:
            layers.append(output_activation)
        self.mlp = nn.Sequential(*layers)

    def forward(self, x):
        return self.mlp(x)

    def forward_logit(self, x):
        """Output before the output activation (the logit for the DNN)."""
        for i in range(self._num_core):
            x = self.mlp[i](x)
        return x


class FeatureEmbeddingDict(nn.Module):
    """`embedding_layers` ModuleDict in feature order; shared tables are the same module object."""

    def __init__(self, spec):
        super().__init__()
        self.embedding_layers = nn.ModuleDict()
        self.feature_encoders = nn.ModuleDict()  # always empty for dmin (encoders are rejected)
        owner = {}
        self._types = OrderedDict()
        for f in spec["features"]:
            name = f["name"]
            self._types[name] = f["type"]
            if f["table"] in owner:
                self.embedding_layers[name] = self.embedding_layers[owner[f["table"]]]
                continue
            owner[f["table"]] = name
            if f["type"] == "numeric":
                self.embedding_layers[name] = nn.Linear(1, f["dim"], bias=False)
            else:
                pad = f.get("padding_idx")
                if pad is not None and not (0 <= pad < f["vocab_size"]):
                    pad = None
                self.embedding_layers[name] = nn.Embedding(f["vocab_size"], f["dim"], padding_idx=pad)

    def embed(self, name, value):
        layer = self.embedding_layers[name]
        if self._types[name] == "numeric":
            # FuxiCTR feeds numeric columns as float32 (.float()); round there, then compute in the
            # module's dtype.
            x = value.float().to(layer.weight.dtype).reshape(-1, 1)
            return layer(x)
        return layer(value.long())


class SumPooling(nn.Module):
    """FuxiCTR MaskedSumPooling as DMIN uses it: plain sum over the sequence axis (padding included)."""

    def forward(self, x):
        return x.sum(dim=1)


class BehaviorRefinerLayer(nn.Module):
    def __init__(self, model_dim, num_heads, attn_dropout=0.0, net_dropout=0.0, layer_norm=True,
                 refiner_mask="additive"):
        super().__init__()
        self.attention = nn.MultiheadAttention(model_dim, num_heads=num_heads, dropout=attn_dropout,
                                               batch_first=True)
        self.ffn = nn.Sequential(nn.Linear(model_dim, 2 * model_dim), nn.ReLU(),
                                 nn.Linear(2 * model_dim, model_dim))
        self.dropout = nn.Dropout(net_dropout)
        self.layer_norm = nn.LayerNorm(model_dim) if layer_norm else None
        self.refiner_mask = refiner_mask

    def attend(self, x, allowed):
        """Multi-head self-attention with FuxiCTR's float mask; allowed: (B, L, L) bool."""
        mha = self.attention
        B, L, D = x.shape
        H = mha.num_heads
        hd = D // H
        proj = F.linear(x, mha.in_proj_weight, mha.in_proj_bias)
        q, k, v = proj.chunk(3, dim=-1)

        def heads(t):  # (B, L, D) -> (B*H, L, hd), index b*H + h
            return t.reshape(B, L, H, hd).transpose(1, 2).reshape(B * H, L, hd)

        q = heads(q) / math.sqrt(hd)
        k = heads(k)
        v = heads(v)
        blocked = (~allowed).unsqueeze(1).expand(B, H, L, L).reshape(B * H, L, L)
        if self.refiner_mask == "strict":
            mask = torch.zeros(blocked.shape, dtype=x.dtype, device=x.device).masked_fill(blocked, float("-inf"))
        else:
            mask = blocked.to(x.dtype)  # == 1 - attn_mask.float(): +1.0 added to blocked logits
        logits = torch.baddbmm(mask, q, k.transpose(1, 2))
        weights = torch.softmax(logits, dim=-1)
        weights = F.dropout(weights, p=mha.dropout, training=self.training)
        o = torch.bmm(weights, v)
        o = o.reshape(B, H, L, hd).transpose(1, 2).reshape(B, L, D)
        return F.linear(o, mha.out_proj.weight, mha.out_proj.bias)

    def forward(self, x, allowed):
        s = self.dropout(self.attend(x, allowed)) + x
        if self.layer_norm is not None:
            s = self.layer_norm(s)
        return self.ffn(s) + s


class ScaledDotProductAttention(nn.Module):
    """softmax(Q K^T / scale with blocked scores replaced by -1e9) V."""

    def __init__(self, dropout_rate=0.0):
        super().__init__()
        self.dropout = nn.Dropout(dropout_rate) if dropout_rate > 0 else None

    def forward(self, Q, K, V, scale, allowed):
        scores = torch.matmul(Q, K.transpose(-1, -2)) / scale
        scores = scores.masked_fill(~allowed, -1.0e9)
        attention = scores.softmax(dim=-1)
        if self.dropout is not None:
            attention = self.dropout(attention)
        return torch.matmul(attention, V), attention


class TargetAttention(nn.Module):
    def __init__(self, model_dim, layout, use_pos_emb=True, pos_emb_dim=8, max_seq_len=10):
        super().__init__()
        self.model_dim = model_dim
        self.use_pos_emb = use_pos_emb
        if use_pos_emb:
            self.pos_emb = nn.Parameter(torch.zeros(max_seq_len, pos_emb_dim))
            self.W_proj = nn.Linear(model_dim + pos_emb_dim, model_dim)
        self.attn_mlp = MLPBlock(layout)

    def forward(self, z, target, pad_mask):
        """z: (B, L, D) head output, target: (B, D), pad_mask: (B, L) True = real token."""
        B, L, D = z.shape
        q = target.unsqueeze(1).expand(-1, L, -1)
        if self.use_pos_emb:
            q = self.W_proj(torch.cat([q, self.pos_emb.unsqueeze(0).expand(B, -1, -1)], dim=-1))
        feat = torch.cat([q, z, q - z, q * z], dim=-1)
        score = self.attn_mlp(feat.reshape(-1, 4 * D)).reshape(B, L)
        score = score.masked_fill(~pad_mask, -1.0e9)
        w = score.softmax(dim=-1)
        return (w.unsqueeze(-1) * z).sum(dim=1), w


class MultiInterestExtractorLayer(nn.Module):
    def __init__(self, model_dim, num_heads, attn_dropout, net_dropout, layer_norm, layout, use_pos_emb,
                 pos_emb_dim, max_seq_len):
        super().__init__()
        if model_dim % num_heads:
            raise SpecError("model_dim %d is not divisible by num_heads %d" % (model_dim, num_heads))
        self.head_dim = model_dim // num_heads
        self.num_heads = num_heads
        self.scale = self.head_dim ** 0.5
        self.W_qkv = nn.Linear(model_dim, 3 * model_dim, bias=False)
        self.attention = ScaledDotProductAttention(attn_dropout)
        self.W_o = nn.ModuleList([nn.Linear(self.head_dim, model_dim, bias=False) for _ in range(num_heads)])
        self.dropout = nn.ModuleList([nn.Dropout(net_dropout) for _ in range(num_heads)]) if net_dropout > 0 else None
        self.layer_norm = nn.ModuleList([nn.LayerNorm(model_dim) for _ in range(num_heads)]) if layer_norm else None
        self.ffn = nn.ModuleList([nn.Sequential(nn.Linear(model_dim, 2 * model_dim), nn.ReLU(),
                                                nn.Linear(2 * model_dim, model_dim)) for _ in range(num_heads)])
        self.target_attention = nn.ModuleList([
            TargetAttention(model_dim, layout, use_pos_emb=use_pos_emb, pos_emb_dim=pos_emb_dim,
                            max_seq_len=max_seq_len) for _ in range(num_heads)])

    def forward(self, r, target, allowed, pad_mask):
        B, L, D = r.shape
        H, hd = self.num_heads, self.head_dim
        Q, K, V = torch.chunk(self.W_qkv(r), 3, dim=-1)
        Q = Q.reshape(B, L, H, hd).transpose(1, 2)
        K = K.reshape(B, L, H, hd).transpose(1, 2)
        V = V.reshape(B, L, H, hd).transpose(1, 2)
        O, _ = self.attention(Q, K, V, self.scale, allowed.unsqueeze(1))
        interests, zs, ws = [], [], []
        for h in range(H):
            s = self.W_o[h](O[:, h])
            if self.dropout is not None:
                s = self.dropout[h](s)
            s = s + r
            if self.layer_norm is not None:
                s = self.layer_norm[h](s)
            z = self.ffn[h](s) + s
            interest, w = self.target_attention[h](z, target, pad_mask)
            interests.append(interest)
            zs.append(z)
            ws.append(w)
        return interests, zs, ws


# ----------------------------------------------------------------------------------------------
# the model

def get_masks(ids):
    """ids (B, L) of the first sequence field -> (pad_mask (B, L), allowed (B, L, L)), True = usable."""
    valid = ids != 0
    L = ids.shape[1]
    eye = torch.eye(L, dtype=torch.bool, device=ids.device)
    causal = torch.ones(L, L, dtype=torch.bool, device=ids.device).tril()
    allowed = (valid.unsqueeze(1) | eye.unsqueeze(0)) & causal.unsqueeze(0)
    return valid, allowed


class DMIN(nn.Module):
    """FuxiCTR DMIN built from a dmin spec dict (weights_format.md section 3)."""

    def __init__(self, spec):
        super().__init__()
        spec = copy.deepcopy(dict(spec))
        validate_spec(spec)
        self.spec = spec
        self.output_activation = nn.Sigmoid() if spec["task"] == "binary_classification" else nn.Identity()
        self.embedding_layer = FeatureEmbeddingDict(spec)
        self.sum_pooling = SumPooling()
        nb = len(spec["branches"])
        geo = [branch_geometry(spec, i) for i in range(nb)]
        if spec["use_behavior_refiner"]:
            self.behavior_refiner = nn.ModuleList([
                BehaviorRefinerLayer(D, H, attn_dropout=spec["attention_dropout"], net_dropout=spec["net_dropout"],
                                     layer_norm=spec["layer_norm"], refiner_mask=spec["refiner_mask"])
                for (D, H, _, _) in geo])
        else:
            self.behavior_refiner = None
        self.multi_interest_extractor = nn.ModuleList([
            MultiInterestExtractorLayer(D, H, spec["attention_dropout"], spec["net_dropout"], spec["layer_norm"],
                                        attention_mlp_layout(spec, D), spec["use_pos_emb"], spec["pos_emb_dim"], L)
            for (D, H, _, L) in geo])
        self.aux_net = nn.ModuleList()
        self.dnn = MLPBlock(dnn_layout(spec), output_activation=self.output_activation)
        self._features = feature_by_name(spec)

    # -- configuration -------------------------------------------------------------------------
    @property
    def refiner_mask(self):
        return self.spec["refiner_mask"]

    def set_refiner_mask(self, mode):
        if mode not in ("additive", "strict"):
            raise SpecError("refiner_mask must be 'additive' or 'strict', got %r" % (mode,))
        self.spec["refiner_mask"] = mode
        if self.behavior_refiner is not None:
            for layer in self.behavior_refiner:
                layer.refiner_mask = mode

    # -- forward -------------------------------------------------------------------------------
    def _needed_features(self):
        need = []
        for br in self.spec["branches"]:
            need += br["target"] + br["sequence"]
        need += [f["name"] for f in self.spec["features"] if f["in_dnn"]]
        return need

    def forward(self, batch, return_intermediates=False):
        """batch: dict feature -> tensor (categorical int64 [B], numeric float [B], sequence int64 [B, L]).

        Returns prob [B] (sigmoid output; identity output for regression), or with
        return_intermediates a dict {branches: [{refined, z, attn, interests, ...}], dnn_input, logit, prob}.
        """
        for name in self._needed_features():
            if name not in batch:
                raise KeyError("batch is missing feature %r" % name)
        emb = OrderedDict()
        for f in self.spec["features"]:
            if f["name"] in batch:
                emb[f["name"]] = self.embedding_layer.embed(f["name"], batch[f["name"]])
        concat = []
        branch_out = []
        for i, br in enumerate(self.spec["branches"]):
            t = torch.cat([emb[n] for n in br["target"]], dim=-1)
            s0 = torch.cat([emb[n] for n in br["sequence"]], dim=-1)
            ids = batch[br["sequence"][0]]
            L = self._features[br["sequence"][0]]["max_len"]
            if ids.dim() != 2 or ids.shape[1] != L:
                raise ValueError("sequence %r must have shape [B, %d], got %s" % (br["sequence"][0], L, list(ids.shape)))
            pad_mask, allowed = get_masks(ids)
            r = self.behavior_refiner[i](s0, allowed) if self.behavior_refiner is not None else s0
            interests, zs, ws = self.multi_interest_extractor[i](r, t, allowed, pad_mask)
            concat += interests
            out = {"target_emb": t, "sequence_emb": s0, "refined": r}
            if self.spec["enable_sum_pooling"]:
                sp = self.sum_pooling(s0)
                concat += [sp, t * sp]
                out["sum_pool"] = sp
            if return_intermediates:
                out["z"] = torch.stack(zs, dim=1)
                out["attn"] = torch.stack(ws, dim=1)
                out["interests"] = torch.stack(interests, dim=1)
                branch_out.append(out)
        for f in self.spec["features"]:
            if f["in_dnn"]:
                concat.append(emb[f["name"]])
        x = torch.cat(concat, dim=-1)
        logit = self.dnn.forward_logit(x)
        prob = self.output_activation(logit)
        if not return_intermediates:
            return prob.squeeze(-1)
        return {"branches": branch_out, "dnn_input": x, "logit": logit.squeeze(-1), "prob": prob.squeeze(-1)}

    # -- tensors ---------------------------------------------------------------------------------
    def dmin_tensors(self):
        """OrderedDict of the tensors a dmin file stores (float32 numpy, FuxiCTR names, tables once)."""
        sd = self.state_dict()
        out = OrderedDict()
        for name in expected_tensor_shapes(self.spec):
            out[name] = sd[name].detach().cpu().float().numpy().copy()
        return out

    def load_dmin_tensors(self, tensors):
        """Load tensors as stored in a dmin file (alias tables filled from their owner)."""
        check_tensor_shapes(self.spec, tensors)
        sd = self.state_dict()
        new = OrderedDict()
        for key, cur in sd.items():
            if key in tensors:
                val = tensors[key]
            elif key.startswith(EMB_PREFIX) and key.endswith(".weight") \
                    and key[len(EMB_PREFIX):-len(".weight")] in self._features:
                val = tensors[self._features[key[len(EMB_PREFIX):-len(".weight")]]["table"]]
            elif key.endswith("num_batches_tracked"):
                val = cur
            else:  # pragma: no cover - check_tensor_shapes catches this
                raise SpecError("missing tensor %s" % key)
            new[key] = torch.as_tensor(np.asarray(val)).to(dtype=cur.dtype)
        self.load_state_dict(new, strict=True)
        return self

    # -- convenience -----------------------------------------------------------------------------
    def make_batch(self, samples, device=None):
        return make_batch(self.spec, samples, device=device)

    @torch.no_grad()
    def predict(self, samples, batch_size=1024):
        """Eval-mode predictions (numpy float64 of the module's float output) for samples in predict form."""
        was_training = self.training
        self.eval()
        try:
            outs = []
            for i in range(0, len(samples), batch_size):
                outs.append(self.forward(self.make_batch(samples[i:i + batch_size])).double().cpu().numpy())
            return np.concatenate(outs) if outs else np.zeros(0)
        finally:
            self.train(was_training)


def make_batch(spec, samples, device=None):
    """Samples in predict form ({feature: id | float | [ids]}) -> batch dict of tensors."""
    batch = {}
    for f in spec["features"]:
        name = f["name"]
        if not all(name in s for s in samples):
            continue
        vals = [s[name] for s in samples]
        if f["type"] == "numeric":
            batch[name] = torch.tensor([float(v) for v in vals], dtype=torch.float32, device=device)
        elif f["type"] == "sequence":
            for v in vals:
                if len(v) != f["max_len"]:
                    raise ValueError("sequence %r must have exactly %d ids, got %d" % (name, f["max_len"], len(v)))
            batch[name] = torch.tensor([[int(x) for x in v] for v in vals], dtype=torch.long, device=device)
        else:
            batch[name] = torch.tensor([int(v) for v in vals], dtype=torch.long, device=device)
    return batch


def model_from_tensors(spec, tensors):
    return DMIN(spec).load_dmin_tensors(tensors).eval()
