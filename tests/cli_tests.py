#!/usr/bin/python3
"""CTest driver for the `dmin` command-line tool: inspect, predict, selftest, bench and their errors."""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import unittest

ARGS = None
CASES = ["tiny_seq_trained", "heads2_dice_bn", "heads4_prelu", "sum_pooling"]


def run(*argv):
    p = subprocess.run([ARGS.dmin, *argv], capture_output=True, text=True, timeout=300)
    return p.returncode, p.stdout, p.stderr


def model(case):
    return os.path.join(ARGS.work, "fuxictr", case + ".safetensors")


def case_file(case, name):
    return os.path.join(ARGS.data, "fuxictr", case, name)


class Inspect(unittest.TestCase):
    def test_summary_and_shape_type(self):
        rc, out, err = run("inspect", model("heads4_prelu"))
        self.assertEqual(rc, 0, err)
        for part in ["click_sequence: sequence", "shares embedding_layer.embedding_layers.adgroup_id.weight",
                     "interest heads: 4 (head dim 3)", "attention MLP: [64, 32, 16]", "DNN: input",
                     "[PReLU, PReLU]", "parameters:", "provenance:", "fuxictr",
                     "\n  C++ shape type: using Net = dmin::Model<dmin::Shape<12, 5, 4, 8, dmin::Units<64, 32, 16>, dmin::Units<48, 24>, 216>>;\n"]:
            self.assertIn(part, out)

    def test_random_models_inspect(self):
        for name in ["numeric_context", "two_branches", "strict_mask", "gelu_regression"]:
            rc, out, err = run("inspect", os.path.join(ARGS.work, "random", name + ".safetensors"))
            self.assertEqual(rc, 0, err)
        rc, out, _ = run("inspect", os.path.join(ARGS.work, "random", "two_branches.safetensors"))
        self.assertIn("dmin::Dynamic", out)  # branches of different D and L


class Predict(unittest.TestCase):
    def test_fuxictr_cases_match_fuxictr(self):
        for case in CASES:
            rc, out, err = run("predict", model(case), case_file(case, "inputs.json"))
            self.assertEqual(rc, 0, err)
            got = json.loads(out)["predictions"]
            want = json.load(open(case_file(case, "expected.json")))["y_pred"]
            self.assertEqual(len(got), len(want))
            worst = max(abs(a - b) for a, b in zip(got, want))
            self.assertLessEqual(worst, 1e-5, case)

    def bad(self, sample_edit, *parts, extra=()):
        doc = json.load(open(case_file("tiny_seq_trained", "inputs.json")))
        samples = doc["samples"][:3]
        sample_edit(samples[2])
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump({"samples": samples}, f)
        try:
            rc, out, err = run("predict", model("tiny_seq_trained"), f.name, *extra)
        finally:
            os.unlink(f.name)
        self.assertEqual(rc, 2)
        self.assertEqual(out, "")
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        self.assertIn("sample 2", err)
        for p in parts:
            self.assertIn(p, err)

    def test_errors_name_sample_and_feature(self):
        self.bad(lambda s: s.update(colour=1), 'unknown feature "colour"')
        self.bad(lambda s: s.pop("pid"), "pid", "missing")
        self.bad(lambda s: s.update(pid=4), "pid", "out of range [0, 4)")
        self.bad(lambda s: s.update(pid=-3), "pid", "id -3")
        self.bad(lambda s: s.update(click_sequence=[1, 2, 3, 4, 5, 6]), "click_sequence", "exceeds max_len 5")
        self.bad(lambda s: s.update(pid="2"), "pid", "expected an integer id")
        self.bad(lambda s: s.update(click_sequence=3), "click_sequence", "expected a list")

    def test_truncation_policy(self):
        doc = {"samples": [json.load(open(case_file("tiny_seq_trained", "inputs.json")))["samples"][0]]}
        doc["samples"][0]["click_sequence"] = [1, 2, 3, 4, 5, 6, 7]
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(doc, f)
        try:
            rc_first, first, err = run("predict", model("tiny_seq_trained"), f.name, "--truncate", "first")
            self.assertEqual(rc_first, 0, err)
            rc_last, last, err = run("predict", model("tiny_seq_trained"), f.name, "--truncate", "last")
            self.assertEqual(rc_last, 0, err)
            doc["samples"][0]["click_sequence"] = [3, 4, 5, 6, 7]
            with open(f.name, "w") as g:
                json.dump(doc, g)
            _, explicit, _ = run("predict", model("tiny_seq_trained"), f.name)
            self.assertEqual(last, explicit)
            self.assertNotEqual(first, last)
        finally:
            os.unlink(f.name)

    def test_file_errors(self):
        rc, out, err = run("predict", model("tiny_seq_trained"), "/nonexistent/input.json")
        self.assertEqual((rc, out), (2, ""))
        self.assertIn("cannot open", err)
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            f.write('{"samples": [')
        rc, out, err = run("predict", model("tiny_seq_trained"), f.name)
        os.unlink(f.name)
        self.assertEqual((rc, out), (2, ""))
        self.assertIn("not valid JSON", err)
        rc, out, err = run("predict", "/nonexistent.safetensors", case_file("tiny_seq_trained", "inputs.json"))
        self.assertEqual((rc, out), (2, ""))
        rc, _, err = run("frobnicate", "x")
        self.assertEqual(rc, 2)
        self.assertIn("usage", err)


class SelfTest(unittest.TestCase):
    def test_passes_on_every_model(self):
        paths = [model(c) for c in CASES] + [os.path.join(ARGS.work, "random", n + ".safetensors")
                                              for n in json.load(open(os.path.join(ARGS.work, "random", "index.json")))["configs"]]
        for p in paths:
            rc, out, err = run("selftest", p)
            self.assertEqual(rc, 0, p + err)
            r = json.loads(out)
            self.assertTrue(r["passed"])
            self.assertLessEqual(r["max_abs_diff"], 1e-5)

    def test_detects_a_wrong_reference(self):
        # Same file with one stored reference prediction changed (same byte length).
        raw = open(model("tiny_seq_trained"), "rb").read()
        n = int.from_bytes(raw[:8], "little")
        header = json.loads(raw[8:8 + n])
        ref = json.loads(header["__metadata__"]["reference"])
        ref["predictions"][0] = 1.0 - ref["predictions"][0]
        header["__metadata__"]["reference"] = json.dumps(ref)
        text = json.dumps(header).encode()
        with tempfile.NamedTemporaryFile(suffix=".safetensors", delete=False) as f:
            f.write(len(text).to_bytes(8, "little") + text + raw[8 + n:])
        try:
            rc, out, err = run("selftest", f.name)
            self.assertEqual(rc, 1)
            self.assertFalse(json.loads(out)["passed"])
            rc, out, err = run("predict", f.name, case_file("tiny_seq_trained", "inputs.json"))
            self.assertEqual((rc, out), (2, ""))
            self.assertIn("self-test failed", err)
            rc, out, err = run("predict", f.name, case_file("tiny_seq_trained", "inputs.json"), "--no-selftest")
            self.assertEqual(rc, 0, err)
        finally:
            os.unlink(f.name)


class Bench(unittest.TestCase):
    def test_json_keys(self):
        rc, out, err = run("bench", model("tiny_seq_trained"), "--candidates", "16", "--seconds", "0.2", "--threads", "2",
                           "--fill", "0.5")
        self.assertEqual(rc, 0, err)
        r = json.loads(out)
        for k in ["candidates", "threads", "request_us", "per_candidate_us", "candidates_per_s", "gflops"]:
            self.assertIn(k, r)
        for k in ["median", "p99"]:
            self.assertGreater(r["request_us"][k], 0)
            self.assertGreater(r["per_candidate_us"][k], 0)
        q = r["request_us"]  # the spread, in order
        self.assertTrue(0 < q["min"] <= q["p10"] <= q["p25"] <= q["median"] <= q["p75"] <= q["p90"] <= q["p99"], q)
        self.assertEqual((r["candidates"], r["threads"]), (16, 2))

    def test_bad_options(self):
        # Each bad option is one line on stderr naming it, status 2, nothing on stdout; values are read
        # whole ("4junk" is not 4, "2.5" threads is not 2).
        cases = [(("--threads", "2"), "--candidates"), (("--candidates", "0"), "--candidates"),
                 (("--candidates", "x"), "--candidates"), (("--candidates", "4junk"), "--candidates: '4junk'"),
                 (("--candidates", "4", "--threads", "2.5"), "--threads: '2.5'"),
                 (("--candidates", "4", "--seconds", "0.1x"), "--seconds: '0.1x'"),
                 (("--candidates", "4", "--seconds", "nan"), "--seconds"), (("--candidates", "4", "--threads", "0"), "--threads"),
                 (("--candidates", "4", "--fill", "2"), "--fill"), (("--candidates", "4", "--fill", ""), "--fill"),
                 (("--candidates", "4", "--bogus", "3"), "unknown option --bogus"), (("--candidates",), "pairs")]
        for argv, says in cases:
            rc, out, err = run("bench", model("tiny_seq_trained"), *argv)
            self.assertEqual((rc, out), (2, ""), argv)
            self.assertIn(says, err, argv)
            self.assertEqual(len(err.strip().splitlines()), 1, err)


def run_env(env, *argv):
    p = subprocess.run([ARGS.dmin, *argv], capture_output=True, text=True, timeout=300, env={**os.environ, **env})
    return p.returncode, p.stdout, p.stderr


class InstructionSet(unittest.TestCase):
    """inspect and bench name the instruction set the tool runs on; in the multi-instruction-set build
    (DMIN_CLI_DISPATCH, "linked: ..." in the name) DMIN_ISA forces a linked one and rejects the rest."""

    def isa_of_bench(self, env):
        rc, out, err = run_env(env, "bench", model("tiny_seq_trained"), "--candidates", "20", "--seconds", "0.05")
        self.assertEqual(rc, 0, err)
        return json.loads(out)["isa"]

    def test_inspect_and_bench_name_it(self):
        rc, out, err = run("inspect", model("tiny_seq_trained"))
        self.assertEqual(rc, 0, err)
        line = [x for x in out.splitlines() if x.startswith("  instruction set: ")]
        self.assertEqual(len(line), 1, out)
        self.assertEqual(line[0][len("  instruction set: "):], self.isa_of_bench({}))

    def test_forced_sets(self):
        isa = self.isa_of_bench({})
        if "linked: " not in isa:
            self.skipTest("single-instruction-set build: " + isa)
        linked = isa.split("linked: ")[1].rstrip(")").split(", ")
        self.assertIn("scalar", linked)
        for name in linked:
            rc, out, err = run_env({"DMIN_ISA": name}, "bench", model("tiny_seq_trained"), "--candidates", "20", "--seconds", "0.05")
            if rc == 0:
                self.assertTrue(json.loads(out)["isa"].startswith(name + " (namespace "), out)
            else:  # a set this CPU lacks: one clear line, status 2
                self.assertEqual((rc, out), (2, ""), name)
                self.assertIn("instruction set %s: this CPU lacks" % name, err)
        rc, out, err = run_env({"DMIN_ISA": "avx9"}, "predict", model("tiny_seq_trained"), case_file("tiny_seq_trained", "inputs.json"))
        self.assertEqual((rc, out), (2, ""))
        self.assertIn("instruction set avx9: not linked into this program (linked: " + ", ".join(linked) + ")", err)
        rc, out, err = run_env({"DMIN_ISA": "avx2", "DMIN_CPU_DISABLE": "avx2"}, "inspect", model("tiny_seq_trained"))
        self.assertEqual((rc, out), (2, ""))
        self.assertIn("instruction set avx2: this CPU lacks avx2", err)

    def test_forced_sets_predict_alike(self):
        isa = self.isa_of_bench({})
        if "linked: " not in isa:
            self.skipTest("single-instruction-set build: " + isa)
        want = json.load(open(case_file("heads4_prelu", "expected.json")))["y_pred"]
        for name in ["avx2", "scalar"]:
            rc, out, err = run_env({"DMIN_ISA": name}, "predict", model("heads4_prelu"), case_file("heads4_prelu", "inputs.json"))
            self.assertEqual(rc, 0, err)
            got = json.loads(out)["predictions"]
            self.assertLessEqual(max(abs(a - b) for a, b in zip(got, want)), 1e-5, name)


EXPORTER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "dmin-export")


class Bf16(unittest.TestCase):
    """Issue 20: --precision bf16 (and bf16-dnn) on predict and bench; a BF16 file round-trips: export, inspect, predict."""

    def predictions(self, path, case, *extra):
        rc, out, err = run("predict", path, case_file(case, "inputs.json"), *extra)
        self.assertEqual(rc, 0, err)
        return json.loads(out)["predictions"]

    def test_predict_bf16_within_the_bound_on_every_case(self):
        for case in CASES:
            want = json.load(open(case_file(case, "expected.json")))["y_pred"]
            got = self.predictions(model(case), case, "--precision", "bf16")
            d = [abs(a - b) for a, b in zip(got, want)]
            self.assertLessEqual(max(d), 2e-3, case)
            self.assertLessEqual(sum(d) / len(d), 2e-4, case)
            # The DNN in bf16 too: its wider bound (dmin::kBf16DnnMaxAbsDiff, kBf16DnnMeanAbsDiff).
            dnn = self.predictions(model(case), case, "--precision", "bf16-dnn")
            self.assertNotEqual(dnn, got, case)
            d = [abs(a - b) for a, b in zip(dnn, want)]
            self.assertLessEqual(max(d), 1e-2, case)
            self.assertLessEqual(sum(d) / len(d), 3e-3, case)

    def test_bench_bf16(self):
        rc, out, err = run("bench", model("heads4_prelu"), "--candidates", "40", "--seconds", "0.2", "--precision", "bf16")
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["precision"], "bf16")
        rc, out, err = run("bench", model("heads4_prelu"), "--candidates", "40", "--seconds", "0.2", "--precision", "bf16-dnn")
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["precision"], "bf16-dnn")
        rc, out, err = run("bench", model("heads4_prelu"), "--candidates", "4", "--precision", "fp8")
        self.assertEqual((rc, out), (2, ""))
        self.assertIn("precision must be float32, bf16 or bf16-dnn, not 'fp8'", err)

    def test_tables_bf16(self):
        """--tables bf16 (LoadOptions::bf16_tables): every case within dmin::kBf16TablesMaxAbsDiff (5e-3) and
        kBf16TablesMeanAbsDiff (1e-3) of FuxiCTR, and it changes the scores; bench reports it; a bad name is a usage error."""
        for case in CASES:
            want = json.load(open(case_file(case, "expected.json")))["y_pred"]
            got = self.predictions(model(case), case, "--tables", "bf16")
            self.assertNotEqual(got, self.predictions(model(case), case), case)
            d = [abs(a - b) for a, b in zip(got, want)]
            self.assertLessEqual(max(d), 5e-3, case)
            self.assertLessEqual(sum(d) / len(d), 1e-3, case)
        rc, out, err = run("bench", model("heads4_prelu"), "--candidates", "40", "--seconds", "0.2", "--tables", "bf16")
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["tables"], "bf16")
        for cmd in (("predict", model("heads4_prelu"), case_file("heads4_prelu", "inputs.json"), "--tables", "fp8"),
                    ("bench", model("heads4_prelu"), "--candidates", "4", "--tables", "fp8")):
            rc, out, err = run(*cmd)
            self.assertEqual((rc, out), (2, ""), cmd)
            self.assertEqual(err.strip().count("\n"), 0, err)
            self.assertIn("tables must be float32 or bf16, not 'fp8'", err)

    def test_bf16_file_round_trip(self):
        case = "heads2_dice_bn"
        d = os.path.join(ARGS.data, "fuxictr", case)
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, case + ".bf16.safetensors")
            ckpt = [f for f in os.listdir(d) if f.endswith(".model")][0]
            expid = json.load(open(os.path.join(d, "params.json")))["model_id"]
            p = subprocess.run([sys.executable, EXPORTER, "fuxictr", "--checkpoint", os.path.join(d, ckpt), "--feature-map",
                                os.path.join(d, "feature_map.json"), "--config", os.path.join(d, "model_config.yaml"),
                                "--expid", expid, "-o", out, "--dtype", "bf16"], capture_output=True, text=True, timeout=300)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertLess(os.path.getsize(out), os.path.getsize(model(case)))
            rc, text, err = run("inspect", out)
            self.assertEqual(rc, 0, err)
            self.assertIn("dtypes: BF16:", text)
            self.assertNotIn("F32:", text)
            rc, text, err = run("inspect", model(case))
            self.assertIn("dtypes: F32:", text)
            want = json.load(open(case_file(case, "expected.json")))["y_pred"]
            for extra in ((), ("--precision", "bf16")):  # the stored pair replays in both (load's self-test)
                got = self.predictions(out, case, *extra)
                self.assertLessEqual(max(abs(a - b) for a, b in zip(got, want)), 5e-3, extra)


WORLD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples", "models", "multi_interest_world.safetensors")


def world_bytes():
    with open(WORLD, "rb") as f:
        return f.read()


class StrictJson(unittest.TestCase):
    """Issue 23: every JSON dmin reads is read to its last byte; otherwise status 2, one line, no stdout."""

    def rejected(self, argv, *says):
        rc, out, err = run(*argv)
        self.assertEqual((rc, out), (2, ""), err)
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        for s in says:
            self.assertIn(s, err)

    def request(self, raw, *says):
        with tempfile.NamedTemporaryFile("wb", suffix=".json", delete=False) as f:
            f.write(raw)
        try:
            self.rejected(("predict", WORLD, f.name), *says)
        finally:
            os.unlink(f.name)

    def model_with_header(self, edit):
        """The shipped model with edit(header bytes) as its header, written to a temporary file."""
        data = world_bytes()
        n = int.from_bytes(data[:8], "little")
        header = edit(data[8:8 + n])
        f = tempfile.NamedTemporaryFile("wb", suffix=".safetensors", delete=False)
        f.write(len(header).to_bytes(8, "little") + header + data[8 + n:])
        f.close()
        self.addCleanup(os.unlink, f.name)
        return f.name

    def model_rejected(self, edit, *says):
        path = self.model_with_header(edit)
        for command in ("inspect", "selftest"):
            self.rejected((command, path), *says)
        self.rejected(("predict", path, case_file("tiny_seq_trained", "inputs.json")), *says)

    def test_request_nul_and_garbage_after_the_document(self):
        self.request(b'{"samples":[]}\x00\x8f\xffgarbage', "NUL byte at offset 14")

    def test_request_nul_inside_a_string(self):
        self.request(b'{"samples":[{"a\x00":1}]}', "NUL byte at offset 15")

    def test_request_garbage_after_the_document(self):
        self.request(b'{"samples":[]} x', "byte 0x78 at offset 15 after the end of the JSON document")

    def test_request_second_document(self):
        self.request(b'{"samples":[]}{"samples":[]}', "byte 0x7B at offset 14 after the end")

    def test_request_overlong_utf8(self):
        self.request(b'{"samples":[{"\xc0\xaf":1}]}', "invalid UTF-8 at offset 14", "overlong")

    def test_request_surrogate_utf8(self):
        self.request(b'{"samples":[{"\xed\xa0\x80":1}]}', "invalid UTF-8 at offset 14", "surrogate")

    def test_request_beyond_u10ffff(self):
        self.request(b'{"samples":[{"\xf4\x90\x80\x80":1}]}', "invalid UTF-8 at offset 14", "beyond U+10FFFF")

    def test_request_truncated_utf8(self):
        self.request(b'{"samples":[{"\xe2\x82":1}]}', "invalid UTF-8 at offset 14", "truncated")

    def test_request_stray_continuation_byte(self):
        self.request(b'{"samples":[{"\x8f":1}]}', "invalid UTF-8 at offset 14", "continuation byte")

    def test_request_trailing_whitespace_is_fine(self):
        with tempfile.NamedTemporaryFile("wb", suffix=".json", delete=False) as f:
            f.write(b'{"samples":[]} \n\t\r\n')
        try:
            rc, out, err = run("predict", WORLD, f.name)
        finally:
            os.unlink(f.name)
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out), {"predictions": []})

    @staticmethod
    def after_json(header, raw):
        """The header with `raw` written over the space padding right after its JSON object."""
        end = len(header.rstrip(b" "))
        assert len(header) - end >= len(raw)
        return header[:end] + raw + header[end + len(raw):]

    def test_model_nul_and_garbage_after_the_header_json(self):
        data = world_bytes()
        json_end = len(data[8:8 + int.from_bytes(data[:8], "little")].rstrip(b" "))
        self.model_rejected(lambda h: self.after_json(h, b"\x00\x8f\xff"), "header: NUL byte at offset %d" % json_end)

    def test_model_newline_in_the_header_padding(self):
        self.model_rejected(lambda h: self.after_json(h, b" \n"), "header: byte 0x0A", "only space padding")

    def test_model_invalid_utf8_in_the_header(self):
        note = lambda raw: lambda h: h.replace(b'{"__metadata__":{', b'{"__metadata__":{"note":"' + raw + b'",', 1)
        for raw, problem in [(b"\xc0\xaf", "overlong"), (b"\xed\xa0\x80", "surrogate"), (b"\xf4\x90\x80\x80", "beyond U+10FFFF"),
                             (b"\xe2\x82", "truncated"), (b"\x8f", "continuation byte")]:
            self.model_rejected(note(raw), "header: invalid UTF-8 at offset 25", problem)

    def test_model_space_padding_is_fine(self):
        path = self.model_with_header(lambda h: h + b" " * 64)
        rc, out, err = run("selftest", path)
        self.assertEqual(rc, 0, err)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--dmin", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--data", required=True)
    ARGS, rest = ap.parse_known_args()
    unittest.main(argv=[sys.argv[0], *rest], verbosity=2)
