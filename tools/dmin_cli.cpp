// dmin command-line tool: inspect a weights file, predict from JSON, replay its self-test, benchmark it.
#include <dmin/dmin.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "bench_cli.hpp"
#include "cli_model.hpp"

namespace {

constexpr int kUsageError = 2;

int usage() {
    std::cerr << "usage:\n"
                 "  dmin inspect MODEL.safetensors\n"
                 "  dmin predict MODEL.safetensors INPUT.json [--no-selftest] [--truncate first|last] [--precision float32|bf16|bf16-dnn]\n"
                 "                [--tables float32|bf16]\n"
                 "  dmin selftest MODEL.safetensors\n"
                 "  dmin bench MODEL.safetensors --candidates N [--threads T] [--seconds S] [--fill F] [--precision float32|bf16|bf16-dnn]\n"
                 "                [--tables float32|bf16]\n";
    return kUsageError;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw dmin::Error(path + ": cannot open file");
    std::ostringstream os;
    os << in.rdbuf();
    return os.str();
}

std::string join(const std::vector<int>& v) {
    std::string s = "[";
    for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
    return s + "]";
}

std::string acts(const std::vector<dmin::Act>& v) {
    std::string s = "[";
    for (std::size_t i = 0; i < v.size(); ++i) s += std::string(i ? ", " : "") + dmin::to_string(v[i]);
    return s + "]";
}

/// Load options without the self-test (on by default), for commands that report on the pair themselves.
dmin::LoadOptions unchecked() {
    dmin::LoadOptions o;
    o.self_test = false;
    return o;
}

/// "F32: 40 tensors, 1234 bytes; BF16: ..." for the file's tensors.
std::string dtypes(const std::string& path) {
    const dmin::io::SafetensorsFile file(path);
    std::size_t count[2] = {0, 0};
    std::uint64_t bytes[2] = {0, 0};
    for (const auto& t : file.tensors()) {
        ++count[t.bf16];
        bytes[t.bf16] += t.bytes;
    }
    std::string s;
    for (int k = 0; k < 2; ++k)
        if (count[k]) s += (s.empty() ? "" : "; ") + std::string(k ? "BF16" : "F32") + ": " + std::to_string(count[k]) + " tensors, " + std::to_string(bytes[k]) + " bytes";
    return s.empty() ? "no tensors" : s;
}

int inspect(const std::string& path) {
    const auto model = dmin_cli::load(path, unchecked());  // describes the file even when its pair would fail
    const auto& s = model.spec();
    std::cout << "dmin model " << path << "\n";
    std::cout << "  task: " << s.task << (s.regression() ? " (identity output)" : " (sigmoid output)") << "\n";
    std::cout << "  features (" << s.features.size() << ", in DNN concat order):\n";
    for (const auto& f : s.features) {
        std::cout << "    " << f.name << ": " << dmin::to_string(f.type) << ", role " << dmin::to_string(f.role) << ", dim " << f.dim;
        if (f.type != dmin::FeatureType::numeric) std::cout << ", vocab " << f.vocab_size;
        if (f.type == dmin::FeatureType::sequence) std::cout << ", max_len " << f.max_len;
        if (f.table != "embedding_layer.embedding_layers." + f.name + ".weight") std::cout << ", shares " << f.table;
        if (!f.in_dnn) std::cout << ", not in DNN input";
        std::cout << "\n";
    }
    std::cout << "  branches (" << s.branches.size() << "):\n";
    for (std::size_t i = 0; i < s.branches.size(); ++i) {
        const auto& b = s.branches[i];
        std::cout << "    " << i << ": target (";
        for (std::size_t k = 0; k < b.target.size(); ++k) std::cout << (k ? ", " : "") << s.features[static_cast<std::size_t>(b.target[k])].name;
        std::cout << ") over sequence (";
        for (std::size_t k = 0; k < b.sequence.size(); ++k) std::cout << (k ? ", " : "") << s.features[static_cast<std::size_t>(b.sequence[k])].name;
        std::cout << "), D = " << b.D << ", L = " << b.L << "\n";
    }
    std::cout << "  interest heads: " << s.num_heads << " (head dim " << s.branches[0].D / s.num_heads << ")\n";
    std::cout << "  behavior refiner: " << (s.use_behavior_refiner ? "on" : "off") << ", refiner mask: "
              << (s.strict_refiner_mask ? "strict (torch 2.0.x)" : "additive +1.0 (FuxiCTR under torch <= 1.13 / >= 2.1)") << "\n";
    std::cout << "  layer norm: " << (s.layer_norm ? "on" : "off") << ", position embedding: "
              << (s.use_pos_emb ? "dim " + std::to_string(s.pos_emb_dim) : std::string("off")) << ", sum pooling: "
              << (s.sum_pooling ? "on" : "off") << "\n";
    std::cout << "  attention MLP: " << join(s.attention_units) << " " << acts(s.attention_acts) << "\n";
    std::cout << "  DNN: input " << s.dnn_input_dim << " -> " << join(s.dnn_units) << " " << acts(s.dnn_acts)
              << (s.batch_norm ? (s.bn_only_once ? ", batch norm on the input" : ", batch norm per layer") : "") << " -> 1\n";
    std::cout << "  parameters: " << model.parameter_count() << " (" << model.file_weight_bytes() << " bytes in the file; "
              << model.resident_bytes() << " bytes resident in float32 precision)\n";
    std::cout << "  dtypes: " << dtypes(path) << "\n";
    if (!s.provenance.is_null()) std::cout << "  provenance: " << s.provenance.dump() << "\n";
    std::cout << "  reference pair: " << (model.reference_json().empty() ? "absent" : "present")
              << ", vocabularies: " << (model.vocab_json().empty() ? "absent" : "present") << "\n";
    std::cout << "  C++ shape type: using Net = dmin::Model<" << dmin::shape_type_for(s) << ">;\n";
    std::cout << "  instruction set: " << dmin_cli::isa(model) << "\n";
    return 0;
}

int predict(const std::string& path, const std::string& input, const dmin::LoadOptions& options, dmin::OverlongPolicy policy) {
    const auto model = dmin_cli::load(path, options);
    const auto doc = dmin::io::parse_strict(read_file(input), input);
    const auto samples = dmin::samples_from_json(model, doc, policy);
    dmin_cli::Scorer scorer(model);
    std::vector<float> preds;
    preds.reserve(samples.size());
    for (const auto& smp : samples) {
        scorer.set_user(smp.view());
        float p = 0;
        scorer.score(scorer.candidate_from(smp.view()), &p);
        preds.push_back(p);
    }
    std::string out = "{\"predictions\": [";
    char buf[64];
    for (std::size_t i = 0; i < preds.size(); ++i) {
        std::snprintf(buf, sizeof buf, "%s%.9g", i ? ", " : "", static_cast<double>(preds[i]));
        out += buf;
    }
    std::cout << out << "]}\n";
    return 0;
}

int selftest(const std::string& path) {
    const auto model = dmin_cli::load(path, unchecked());  // the replay below reports instead of throwing
    const auto r = dmin_cli::replay_reference(model);
    std::cout << "{\"samples\": " << r.samples << ", \"max_abs_diff\": " << std::max(r.max_abs_diff, r.fast_max_abs_diff)
              << ", \"tolerance\": " << r.tolerance
              << ", \"passed\": " << (r.passed ? "true" : "false") << "}\n";
    return r.passed ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    const std::vector<std::string> args(argv + 1, argv + argc);
    if (args.size() < 2) return usage();
    try {
        const std::string& cmd = args[0];
        if (cmd == "inspect" && args.size() == 2) return inspect(args[1]);
        if (cmd == "selftest" && args.size() == 2) return selftest(args[1]);
        if (cmd == "predict" && args.size() >= 3) {
            dmin::LoadOptions options;
            auto policy = dmin::OverlongPolicy::error;
            for (std::size_t i = 3; i < args.size(); ++i) {
                if (args[i] == "--no-selftest") options.self_test = false;
                else if (args[i] == "--precision" && i + 1 < args.size()) dmin::set_precision(options, args[++i]);
                else if (args[i] == "--tables" && i + 1 < args.size()) dmin::set_tables(options, args[++i]);
                else if (args[i] == "--truncate" && i + 1 < args.size()) {
                    const auto& v = args[++i];
                    if (v == "first") policy = dmin::OverlongPolicy::keep_first;
                    else if (v == "last") policy = dmin::OverlongPolicy::keep_last;
                    else return usage();
                } else return usage();
            }
            return predict(args[1], args[2], options, policy);
        }
        if (cmd == "bench") return dmin_cli::bench(args);
        return usage();
    } catch (const std::exception& e) {
        std::cerr << "dmin: " << e.what() << "\n";
        return kUsageError;
    }
}
