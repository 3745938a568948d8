"""Batch scoring of a partitioned dataset on a Dask cluster.

    from dask.distributed import Client
    import dmin.batch
    client = Client("tcp://scheduler:8786")          # or Client(LocalCluster(...))
    done = dmin.batch.score_partitions("model.safetensors", ["part-000.npz", "part-001.npz"], client)

Each partition is one file of feature arrays (default reader: .npz with one array per feature; extra
keys are ignored). Its predictions are written next to it as <name>.pred.npy (float32, one per row),
through a temporary file renamed into place: a partition retried after a worker died is rewritten
whole, never appended to or left half-written. Every worker process loads the model once (memory-mapped
tables, shared through the page cache) and keeps it for all the partitions it scores.

The model file and the partitions must be readable at the same path from every worker (a shared or
network file system on a real cluster). For dask.dataframe, `predict_frame` scores one pandas partition:
    ddf.map_partitions(dmin.batch.predict_frame, "model.safetensors", meta=("p", "f4"))
"""

import os
import tempfile
import threading

import numpy as np

import dmin
from dmin.check import model_features

_models = {}  # per process: (path, mtime, size) -> dmin.Model
_loads = 0    # models loaded by this process (for tests and logs)
_lock = threading.Lock()  # a worker with several threads still loads a model once
# Output files get the usual permissions (mkstemp creates 0600); read once, as os.umask can only be
# read by setting it, which would race with other threads creating files.
_UMASK = os.umask(0)
os.umask(_UMASK)


def model_for(path, map_tables_larger_than=0):
    """This process's dmin.Model for `path`, loaded on first use (a file replaced since is reloaded)."""
    global _loads
    st = os.stat(path)
    key = (os.path.abspath(path), st.st_mtime_ns, st.st_size, map_tables_larger_than)
    with _lock:
        m = _models.get(key)
        if m is None:
            m = dmin.load(path, map_tables_larger_than=map_tables_larger_than)
            _models[key] = m
            _loads += 1
        return m


def read_npz(path):
    """Default partition reader: the arrays of an .npz file, as a dict."""
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def output_path(partition, suffix=".pred.npy"):
    base = partition[:-4] if partition.endswith(".npz") else partition
    return base + suffix


def write_atomic(path, array):
    """Writes `array` as .npy at `path` by rename, so readers see the old file or the whole new one."""
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=d)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.save(fh, array)
            fh.flush()
            os.fchmod(fh.fileno(), 0o666 & ~_UMASK)
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def score_file(model_path, partition, reader=read_npz, suffix=".pred.npy", map_tables_larger_than=0):
    """Scores one partition file and writes its predictions next to it. Runs on a worker.
    Returns {"partition", "output", "rows", "pid", "loads"}."""
    m = model_for(model_path, map_tables_larger_than)
    pred = m.predict(model_features(m, reader(partition)))
    out = output_path(partition, suffix)
    write_atomic(out, pred)
    return {"partition": partition, "output": out, "rows": int(len(pred)), "pid": os.getpid(), "loads": _loads}


def score_partitions(model_path, partitions, client, reader=read_npz, suffix=".pred.npy", retries=2,
                     map_tables_larger_than=0):
    """Scores every partition file on the cluster behind `client` (a dask.distributed.Client), one task
    per partition, and returns score_file's result for each, in order. A task whose worker dies is
    rescheduled by Dask; `retries` more attempts are made for a task that raises."""
    model_path = os.path.abspath(model_path)
    parts = [os.path.abspath(p) for p in partitions]
    futures = [client.submit(score_file, model_path, p, reader, suffix, map_tables_larger_than, retries=retries, pure=False)
               for p in parts]
    return client.gather(futures)


def predict_frame(frame, model_path, map_tables_larger_than=0):
    """Predictions for one pandas DataFrame (columns named as the model's features; a sequence column
    holds one id list or array per row) as a float32 pandas Series on the frame's index."""
    import pandas as pd

    m = model_for(model_path, map_tables_larger_than)
    arrays = {}
    for f in m.spec["features"]:
        if f["name"] not in frame:
            continue
        col = frame[f["name"]].to_numpy()
        if f["type"] == "sequence" and col.dtype == object:
            col = np.stack([np.asarray(v) for v in col]) if len(col) else np.zeros((0, f["max_len"]), np.int64)
        arrays[f["name"]] = col
    return pd.Series(m.predict(arrays), index=frame.index, dtype=np.float32)
