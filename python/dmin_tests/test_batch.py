"""dmin.batch on a Dask LocalCluster (2 worker processes): 8 partitions of world-generator requests,
predictions equal single-process scoring bit for bit; a worker killed mid-run loses and duplicates
nothing. Offline: no dashboard, nothing fetched."""
import functools
import glob
import os
import shutil
import tempfile
import unittest

import numpy as np

import dmin
import dmin.batch
from dmin_tests import _env
from world.generate import FEATURES, World

N_PARTS = 8


def reader_that_kills(marker, victim, path):
    """Partition reader for the fault test: the first worker to read `victim` dies on the spot (no
    cleanup, like a crash or an OOM kill); `marker` records that it happened."""
    if os.path.basename(path) == victim and not os.path.exists(marker):
        with open(marker, "w") as fh:
            fh.write(str(os.getpid()))
        os._exit(1)
    return dmin.batch.read_npz(path)


class DaskBatch(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        import dask
        from dask.distributed import Client, LocalCluster

        cls.tmp = tempfile.mkdtemp(prefix="dmin-py-dask-")
        cls.model = os.path.join(cls.tmp, "world.safetensors")
        shutil.copyfile(_env.WORLD_MODEL, cls.model)
        world = World(0)
        cls.parts, cls.rows = [], []
        for i in range(N_PARTS):
            cols, _ = world.samples(60 + 7 * i, 5, seed=100 + i)  # partitions of different sizes
            path = os.path.join(cls.tmp, "part-%03d.npz" % i)
            np.savez(path, label=cols["label"], **{k: cols[k] for k in FEATURES})
            cls.parts.append(path)
            cls.rows.append(len(cols["item_id"]))
        m = dmin.load(cls.model)
        cls.expected = [m.predict({k: v for k, v in dmin.batch.read_npz(p).items() if k != "label"}) for p in cls.parts]
        dask.config.set({"distributed.scheduler.allowed-failures": 3, "distributed.worker.daemon": True})
        cls.cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
        cls.client = Client(cls.cluster)

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        cls.cluster.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.client.wait_for_workers(2, timeout=60)  # the worker the fault test killed is back (nanny restart)

    def clear_outputs(self):
        for f in glob.glob(os.path.join(self.tmp, "part-*.pred.npy")):
            os.unlink(f)

    def check_outputs(self, results):
        self.assertEqual([r["partition"] for r in results], self.parts)
        self.assertEqual([r["rows"] for r in results], self.rows)
        for path, want, rows in zip(self.parts, self.expected, self.rows):
            got = np.load(dmin.batch.output_path(path))
            self.assertEqual(os.stat(dmin.batch.output_path(path)).st_mode & 0o777, 0o666 & ~dmin.batch._UMASK)
            self.assertEqual(got.dtype, np.float32)
            self.assertEqual(len(got), rows)  # whole, not appended to by a retry
            np.testing.assert_array_equal(got, want)
        self.assertEqual(sum(len(np.load(dmin.batch.output_path(p))) for p in self.parts), sum(self.rows))
        self.assertEqual(glob.glob(os.path.join(self.tmp, ".*.tmp")), [])  # no temporary file left behind
        # every worker process loaded the model once, however many partitions it scored
        loads = {}
        for r in results:
            loads[r["pid"]] = max(loads.get(r["pid"], 0), r["loads"])
        self.assertEqual(set(loads.values()), {1})

    def test_partitions_equal_single_process(self):
        self.clear_outputs()
        results = dmin.batch.score_partitions(self.model, self.parts, self.client)
        self.check_outputs(results)
        self.assertEqual(len(self.client.scheduler_info()["workers"]), 2)

    def test_killed_worker_is_retried(self):
        self.clear_outputs()
        marker = os.path.join(self.tmp, "killed")
        reader = functools.partial(reader_that_kills, marker, "part-003.npz")
        results = dmin.batch.score_partitions(self.model, self.parts, self.client, reader=reader)
        self.assertTrue(os.path.exists(marker))
        with open(marker) as fh:
            killed = int(fh.read())
        self.assertNotIn(killed, {r["pid"] for r in results})
        self.check_outputs(results)

    def test_dataframe_partitions(self):
        import dask.dataframe as dd
        import pandas as pd

        z = dmin.batch.read_npz(self.parts[0])
        frame = pd.DataFrame({k: (list(z[k]) if z[k].ndim == 2 else z[k]) for k in FEATURES})
        ddf = dd.from_pandas(frame, npartitions=4)
        got = ddf.map_partitions(dmin.batch.predict_frame, self.model, meta=("p", "f4")).compute()
        np.testing.assert_array_equal(got.to_numpy(), self.expected[0])


if __name__ == "__main__":
    unittest.main()
