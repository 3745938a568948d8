"""dmin from Python: the C++ DMIN scorer on numpy arrays.

    import dmin
    m = dmin.load("model.safetensors")          # replays the file's reference pair (self_test=True)
    p = m.predict({"user_id": ids, ..., "item_hist": seqs})   # float32 [n]
    s = m.scorer()                               # one per thread
    s.set_user({"user_id": 7, ..., "item_hist": [3, 9, 4]})
    s.score({"item_id": cand_ids, "cate_id": cand_cates})    # float32 [n candidates]
    s.explain({"item_id": cand_ids, "cate_id": cand_cates}, 0)

Features are a dict {feature name: numpy array}, one row per sample: int64 ids [n], float32 values [n],
int64 sequences [n, max_len] (narrower ones are padded with 0). Arrays of exactly these dtypes are read
in place (any strides); other integer / float dtypes are converted once. String arrays are raw tokens,
mapped through the vocabularies the file carries (as `dmin predict` does with JSON strings).

A Model is immutable: share it between threads (predict releases the GIL). A Scorer holds one
request's state: create one per thread; using one from two threads at once raises dmin.Error.
Every failure raises dmin.Error (a ValueError) with the C++ library's message.
"""

import json

try:
    from . import _dmin
except ImportError as e:  # the source tree's python/dmin has no extension: it is built into <build>/python/dmin
    raise ImportError("dmin: the extension module _dmin was not found next to %s; build with "
                      "-DDMIN_BUILD_PYTHON=ON and put <build>/python first on PYTHONPATH (%s)" % (__file__, e)) from e

Error = _dmin.Error
Scorer = _dmin.Scorer

__all__ = ["Error", "Model", "Scorer", "load"]


class Model(_dmin.Model):
    """A loaded weights file (see dmin.load)."""

    @property
    def spec(self):
        """The file's spec (weights_format.md §3) as plain Python data: a new dict on every access."""
        return json.loads(self.spec_json)

    def __repr__(self):
        return "dmin.Model(%r, %d parameters)" % (self.path, self.parameter_count)


def load(path, self_test=True, map_tables_larger_than=None, precision="float32", tables="float32"):
    """Load and validate a dmin weights file. self_test replays the stored reference pair;
    map_tables_larger_than (bytes) memory-maps the larger embedding tables instead of copying them
    (None: the library's default, 256 MiB; 0: map every table); precision "bf16" runs the
    per-candidate attention products on bf16 operands; tables "bf16" keeps the embedding tables in
    bf16, half the memory (README FAQ: when to use either, and what it costs)."""
    return Model(str(path), self_test, map_tables_larger_than, precision, tables)
