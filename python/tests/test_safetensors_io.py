import json
import os
import struct
import tempfile
import unittest
from collections import OrderedDict

import numpy as np

from tests import _util  # noqa: F401  (puts python/ on sys.path)
from dmin_ref import safetensors_io as st


def _tensors():
    rng = np.random.RandomState(0)
    return OrderedDict([("a.weight", rng.randn(3, 5).astype(np.float32)), ("a.bias", rng.randn(5)),
                        ("scalar_like", np.array([1.5], dtype=np.float32)), ("empty", np.zeros((0, 4), np.float32)),
                        ("b.c.d", rng.randn(2, 3, 4).astype(np.float32))])


class SafetensorsRoundTrip(unittest.TestCase):
    def test_round_trip_and_layout(self):
        t = _tensors()
        meta = {"format": "dmin", "format_version": "1", "spec": json.dumps({"x": "é"})}
        data = st.encode(t, meta)
        (n,) = struct.unpack("<Q", data[:8])
        self.assertEqual((8 + n) % 64, 0, "data section must start at a multiple of 64")
        header_text = data[8:8 + n].decode("utf-8")
        self.assertEqual(header_text, header_text.rstrip(" ") + " " * (len(header_text) - len(header_text.rstrip(" "))))
        header = json.loads(header_text)
        self.assertEqual(list(header)[0], "__metadata__")
        # tensors back to back in header order, covering the data section exactly
        pos = 0
        for name in t:
            b, e = header[name]["data_offsets"]
            self.assertEqual(b, pos)
            self.assertEqual(header[name]["dtype"], "F32")
            pos = e
        self.assertEqual(pos, len(data) - 8 - n)
        back, meta2 = st.decode(data)
        self.assertEqual(meta2, meta)
        self.assertEqual(list(back), list(t))
        for k in t:
            np.testing.assert_array_equal(back[k], np.asarray(t[k], dtype=np.float32))
            self.assertEqual(back[k].dtype, np.float32)

    def test_bf16_round_trip(self):
        # BF16 tensors: half the bytes, rounded to nearest even, read back widened to float32.
        t = _tensors()
        data = st.encode(t, {"k": "v"}, dtype="BF16")
        (n,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8:8 + n].decode("utf-8"))
        self.assertEqual({header[k]["dtype"] for k in t}, {"BF16"})
        self.assertEqual(len(data) - 8 - n, 2 * sum(np.asarray(v).size for v in t.values()))
        back, _ = st.decode(data)
        for k in t:
            want = st.round_bf16(np.asarray(t[k], np.float32))
            np.testing.assert_array_equal(back[k], want)
            self.assertLessEqual(float(np.max(np.abs(back[k] - np.asarray(t[k], np.float32)), initial=0)),
                                 float(np.max(np.abs(np.asarray(t[k])), initial=0)) * 2.0 ** -8)
        u = lambda x: np.array([x], np.uint32).view(np.float32)  # noqa: E731
        self.assertEqual(int(st.to_bf16_bits(u(0x3F808000))[0]), 0x3F80)  # tie to even: down
        self.assertEqual(int(st.to_bf16_bits(u(0x3F818000))[0]), 0x3F82)  # tie to even: up
        self.assertTrue(np.isnan(st.round_bf16(u(0x7F800001))[0]))  # NaN stays NaN
        with self.assertRaises(st.SafetensorsError):
            st.encode(t, dtype="F16")

    def test_file_round_trip(self):
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "x.safetensors")
            st.write_file(p, _tensors(), {"k": "v"})
            back, meta = st.read_file(p)
            self.assertEqual(meta, {"k": "v"})
            n, header = st.header_info(p)
            self.assertEqual((8 + n) % 64, 0)

    def test_writer_rejects(self):
        with self.assertRaises(st.SafetensorsError):
            st.encode({"x": np.array([1.0, np.nan], np.float32)})
        with self.assertRaises(st.SafetensorsError):
            st.encode({"x": np.array([1, 2], np.int64)})
        with self.assertRaises(st.SafetensorsError):
            st.encode({"x": np.zeros(2, np.float32)}, {"k": 1})

    def test_reader_rejects(self):
        good = st.encode(OrderedDict([("a", np.ones((2, 2), np.float32)), ("b", np.ones(3, np.float32))]), {"m": "1"})
        (n,) = struct.unpack("<Q", good[:8])
        header = json.loads(good[8:8 + n].decode())

        def with_header(h, body=None):
            txt = json.dumps(h).encode()
            return struct.pack("<Q", len(txt)) + txt + (good[8 + n:] if body is None else body)

        cases = {
            "truncated": good[:5],
            "truncated header": good[:8 + n - 3],
            "header length": struct.pack("<Q", 200 * 1024 * 1024) + b"{}",
            "duplicate key": struct.pack("<Q", 19) + b'{"a":{},"a":{}}    ',
            "dtype": with_header(dict(header, a=dict(header["a"], dtype="F16"))),
            "shape": with_header(dict(header, a=dict(header["a"], shape=[3, 2]))),
            "gap": with_header(dict(header, b=dict(header["b"], data_offsets=[20, 32]))),
            "data size": good + b"\0\0\0\0",
            "non-finite": with_header(header, np.array([1, 1, 1, np.inf, 1, 1, 1], np.float32).tobytes()),
            "missing field": with_header(dict(header, a={"dtype": "F32", "shape": [2, 2]})),
        }
        for what, blob in cases.items():
            with self.subTest(what):
                with self.assertRaises(st.SafetensorsError):
                    st.decode(blob)


if __name__ == "__main__":
    unittest.main()
