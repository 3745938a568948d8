// ONNX Runtime (onnxruntime-node) side of benchmarks/compare.py.
//
//   node ort_runner.js MODEL.onnx THREADS        (NODE_PATH must reach onnxruntime-node)
//
// Creates one InferenceSession (CPU, intraOpNumThreads = THREADS, interOpNumThreads = 1, all graph
// optimisations), prints {"ready": true, "version": ...} and then answers one JSON line per request
// line on stdin:
//   {"inputs": {name: {"file": path, "dims": [..], "type": "int64"|"float32"}},
//    "warmup": 1, "min_iters": 3, "budget_s": 0.3, "return_output": true}
// -> {"times_us": [...], "cpu_us": [...], "output": [...]}   (wall and process CPU time per run;
//    output of the last run, when asked)
// Errors are reported as {"error": message}.
"use strict";
const fs = require("fs");
const readline = require("readline");
const ort = require("onnxruntime-node");

function loadTensor(spec) {
  const buf = fs.readFileSync(spec.file);
  const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length);
  if (spec.type === "int64") return new ort.Tensor("int64", new BigInt64Array(ab), spec.dims);
  if (spec.type === "float32") return new ort.Tensor("float32", new Float32Array(ab), spec.dims);
  throw new Error("unsupported input type " + spec.type);
}

async function main() {
  const [model, threads] = process.argv.slice(2);
  const session = await ort.InferenceSession.create(model, {
    executionProviders: ["cpu"],
    intraOpNumThreads: Number(threads || 1),
    interOpNumThreads: 1,
    executionMode: "sequential",
    graphOptimizationLevel: "all",
  });
  let version = "";
  try { version = require("onnxruntime-node/package.json").version; } catch (e) { /* ignore */ }
  process.stdout.write(JSON.stringify({ ready: true, version, inputs: session.inputNames, outputs: session.outputNames }) + "\n");
  const rl = readline.createInterface({ input: process.stdin, terminal: false });
  for await (const line of rl) {
    if (!line.trim()) continue;
    try {
      const req = JSON.parse(line);
      const feeds = {};
      for (const [name, spec] of Object.entries(req.inputs)) feeds[name] = loadTensor(spec);
      let out = null;
      for (let i = 0; i < (req.warmup ?? 1); ++i) out = await session.run(feeds);
      const times = [];
      const cpu = [];
      const budgetNs = BigInt(Math.round((req.budget_s ?? 0.3) * 1e9));
      const start = process.hrtime.bigint();
      while (times.length < (req.min_iters ?? 3) || process.hrtime.bigint() - start < budgetNs) {
        const c0 = process.cpuUsage();
        const t0 = process.hrtime.bigint();
        out = await session.run(feeds);
        times.push(Number(process.hrtime.bigint() - t0) / 1e3);
        const c1 = process.cpuUsage(c0);
        cpu.push(c1.user + c1.system);
        if (times.length >= (req.max_iters ?? 100000)) break;
      }
      const res = { times_us: times, cpu_us: cpu };
      if (req.return_output) res.output = Array.from(out[session.outputNames[0]].data);
      process.stdout.write(JSON.stringify(res) + "\n");
    } catch (e) {
      process.stdout.write(JSON.stringify({ error: String(e && e.message ? e.message : e) }) + "\n");
    }
  }
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({ error: String(e && e.message ? e.message : e) }) + "\n");
  process.exit(1);
});
