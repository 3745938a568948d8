// Hostile inputs not covered by test_loader_errors / test_requests / test_scorer: odd JSON shapes in
// the header, non-regular files, deep nesting, inconsistent shared tables, negative variances,
// integer overflow in the spec, extreme request values, misuse of the fast-path API, and files
// replaced under a mapped model. Every case must end in a dmin::Error (or a valid result), never
// in a crash, a sanitizer report, another exception type or a NaN probability.
// Several cases here were open bugs when written (tests/fuzz/README.md, "Findings"), fixed in def20f0
// and 93fcc06; a test documenting a bug still open would carry the tag [open-bug].
#include "catch.hpp"

#include <cstdio>
#include <cstring>
#include <limits>
#include <typeinfo>

#include "test_util.hpp"

using dmin::io::json;

namespace {

using dmin_test::le64;

std::string work(const std::string& name) { return dmin_test::work_dir() + "/hostile_" + name; }

/// A weights file split into header and data section, to be changed and written back.
struct Raw {
    json header;
    std::string data;
    static Raw read(const std::string& path) {
        const std::string b = dmin_test::slurp(path);
        const std::uint64_t n = dmin_test::header_length(b);
        return {json::parse(b.substr(8, n)), b.substr(8 + n)};
    }
    std::string write(const std::string& name, std::string text = "") const {
        if (text.empty()) text = header.dump();
        while ((8 + text.size()) % 64 != 0) text += ' ';  // data section 64-byte aligned, as the exporter writes it
        const std::string path = work(name + ".safetensors");
        dmin_test::write_bytes(path, le64(text.size()) + text + data);
        return path;
    }
    json spec() const { return json::parse(header["__metadata__"]["spec"].get<std::string>()); }
    void set_spec(const json& s) { header["__metadata__"]["spec"] = s.dump(); }
    float* f32(const std::string& tensor, std::size_t i) {
        return reinterpret_cast<float*>(&data[header[tensor]["data_offsets"][0].get<std::size_t>() + 4 * i]);
    }
};

std::string tiny_path() { return dmin_test::work_dir() + "/fuxictr/tiny_seq_trained.safetensors"; }
std::string random_path(const std::string& name) { return dmin_test::work_dir() + "/random/" + name + ".safetensors"; }

/// Loads `path` expecting a dmin::Error whose message contains every part; any other outcome fails.
void require_load_error(const std::string& path, const std::vector<std::string>& parts, dmin::LoadOptions opts = {}) {
    try {
        (void)dmin::load(path, opts);
        FAIL("expected dmin::Error loading " << path);
    } catch (const dmin::Error& e) {
        for (const auto& p : parts) CHECK_THAT(e.what(), Catch::Contains(p));
    } catch (const std::exception& e) {
        FAIL("expected dmin::Error, got " << typeid(e).name() << ": " << e.what());
    }
}

/// A header-only file: header text, no data section.
std::string header_only(const std::string& name, const std::string& text) {
    const std::string path = work(name + ".safetensors");
    dmin_test::write_bytes(path, le64(text.size()) + text);
    return path;
}

/// Runs the JSON request path of `dmin predict` on `text`: parse_strict, samples_from_json, score each sample.
std::vector<float> predict_json(const dmin::Model<>& m, const std::string& text,
                                dmin::OverlongPolicy policy = dmin::OverlongPolicy::error) {
    const auto doc = dmin::io::parse_strict(text, "input");
    return dmin_test::score_each(m, dmin::samples_from_json(m, doc, policy));
}

template <class F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const dmin::Error& e) {
        return e.what();
    } catch (const std::exception& e) {
        return std::string("NOT A dmin::Error: ") + typeid(e).name() + ": " + e.what();
    }
    return "NO ERROR";
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Weights files

TEST_CASE("hostile weights: header JSON of the wrong shape", "[hostile][loader]") {
    require_load_error(header_only("h_array", "[]"), {"expected a JSON object"});
    require_load_error(header_only("h_string", "\"dmin\""), {"expected a JSON object"});
    require_load_error(header_only("h_null", "null"), {"expected a JSON object"});
    require_load_error(header_only("h_zero_len", ""), {"not valid JSON"});
    require_load_error(header_only("h_empty_obj", "{}"), {"not a dmin weights file"});
    require_load_error(header_only("h_garbage_pad", "{}  xx"), {"header: byte 0x78 at offset 4", "only space padding"});
    require_load_error(header_only("h_nul", std::string("{\"a\0\": 1}", 9)), {"header: NUL byte at offset 3"});
    require_load_error(header_only("h_utf8", "{\"\xff\xfe\": 1}"), {"header: invalid UTF-8 at offset 2"});
    require_load_error(header_only("h_meta_array", "{\"__metadata__\": []}"), {"__metadata__"});
    require_load_error(header_only("h_meta_number", "{\"__metadata__\": {\"format\": 1}}"), {"__metadata__.format", "expected a string"});
    require_load_error(header_only("h_entry_number", "{\"t\": 5}"), {"tensor t"});
}

TEST_CASE("hostile weights: malformed tensor entries", "[hostile][loader]") {
    const auto base = Raw::read(tiny_path());
    const std::string t = "embedding_layer.embedding_layers.pid.weight";
    const json good = base.header[t];
    const std::vector<std::pair<const char*, json>> shapes = {
        {"neg", json::array({-4, 8})},     {"float", json::array({4.0, 8})}, {"string", json::array({"4", 8})},
        {"nested", json::array({json::array({4}), 8})}, {"null", nullptr}, {"object", json::object()}};
    for (const auto& [name, shape] : shapes) {
        Raw r = base;
        r.header[t]["shape"] = shape;
        INFO("shape " << shape.dump());
        require_load_error(r.write(std::string("shape_") + name), {t, "shape"});
    }
    const auto b = good["data_offsets"][0].get<std::uint64_t>(), e = good["data_offsets"][1].get<std::uint64_t>();
    const std::vector<std::pair<const char*, json>> offsets = {
        {"one", json::array({b})},        {"three", json::array({b, e, e})}, {"neg", json::array({-1, e})},
        {"float", json::array({1.0 * b, 1.0 * e})}, {"reversed", json::array({e, b})}, {"string", "0-128"},
        {"huge", json::array({b, std::numeric_limits<std::uint64_t>::max()})}};
    for (const auto& [name, off] : offsets) {
        Raw r = base;
        r.header[t]["data_offsets"] = off;
        INFO("data_offsets " << off.dump());
        require_load_error(r.write(std::string("off_") + name), {t, "data_offsets"});
    }
    SECTION("a gap between two tensors (same total length)") {
        Raw r = base;
        r.header[t]["data_offsets"] = {b + 4, e + 4};
        r.data += "abcd";
        require_load_error(r.write("gap"), {"data_offsets", "back to back"});
    }
    SECTION("dtype of another type or case") {
        for (const json& d : {json("f32"), json(32), json(nullptr), json("F32 ")}) {
            Raw r = base;
            r.header[t]["dtype"] = d;
            INFO("dtype " << d.dump());
            require_load_error(r.write("dtype"), {t, "dtype"});
        }
    }
}

TEST_CASE("hostile weights: paths that are not regular weights files", "[hostile][loader]") {
    require_load_error(dmin_test::work_dir(), {dmin_test::work_dir()});  // a directory
    require_load_error("/dev/null", {"truncated"});
    require_load_error("", {"cannot open"});
}

TEST_CASE("hostile weights: a shared table must have the shape of every feature that uses it", "[hostile][loader]") {
    // click_sequence shares adgroup_id's table ([96, 8]). Declaring a larger vocabulary for the alias
    // lets ids 96..99999 pass validation and read past the end of the table (heap out-of-bounds read
    // in Scorer::user_branch). The loader must reject the spec instead.
    Raw r = Raw::read(tiny_path());
    auto s = r.spec();
    for (auto& f : s["features"])
        if (f["name"] == "click_sequence") f["vocab_size"] = 100000;
    r.set_spec(s);
    require_load_error(r.write("alias_vocab"), {"click_sequence"});
}

TEST_CASE("hostile weights: a negative running variance is rejected, not turned into NaN predictions", "[hostile][loader]") {
    // BatchNorm folding divides by sqrt(running_var + eps): a variance below -eps would make the folded
    // weights NaN, and every prediction NaN (or a "not finite" error that blames the request), although
    // the file holds only finite numbers. load() rejects any negative variance, naming the tensor and
    // the index: a DNN BatchNorm, a DNN Dice's and a target-attention Dice's (fixed in 93fcc06).
    const char* const keys[] = {"dnn.mlp.1.running_var", "dnn.mlp.6.bn.running_var",
                                "multi_interest_extractor.0.target_attention.2.attn_mlp.mlp.4.bn.running_var"};
    int n = 0;
    for (const char* key : keys) {
        Raw r = Raw::read(random_path("tuple_bn_dice_dropout"));
        *r.f32(key, 1) = -1.0f;
        require_load_error(r.write("neg_var_" + std::to_string(n++)), {key, "running variance -1", "index 1", "negative"});
    }
}

TEST_CASE("hostile weights: a non-numeric reference prediction is a dmin::Error under self_test", "[hostile][loader]") {
    Raw r = Raw::read(tiny_path());
    auto ref = json::parse(r.header["__metadata__"]["reference"].get<std::string>());
    ref["predictions"][1] = "0.5";
    r.header["__metadata__"]["reference"] = ref.dump();
    dmin::LoadOptions opts;
    opts.self_test = true;
    require_load_error(r.write("ref_string"), {"predictions[1]"}, opts);
}

TEST_CASE("hostile weights: JSON nested 200000 deep in the header", "[hostile][loader]") {
    // Found open: error messages dump() the offending value recursively, so deep nesting was a stack
    // overflow (SIGSEGV). Either parse_strict bounds the depth or the message names the field.
    Raw r = Raw::read(tiny_path());
    const std::string deep = std::string(200000, '[') + std::string(200000, ']');
    std::string h = r.header.dump();
    const std::string key = "\"shape\":";
    const auto pos = h.find(key) + key.size();
    h.replace(pos, h.find(']', pos) + 1 - pos, deep);
    const std::string path = r.write("deep", h);
    const auto e = error_of([&] { (void)dmin::load(path); });
    CHECK_THAT(e, Catch::Contains("shape") || Catch::Contains("nest"));
    CHECK_THAT(e, !Catch::StartsWith("NOT A") && !Catch::Equals("NO ERROR"));
}

// ---------------------------------------------------------------------------------------------
// Spec

TEST_CASE("hostile spec: widths that overflow int are a dmin::Error, without signed overflow", "[hostile][spec]") {
    // 32 copies of a 65536-wide field give D = 2^21; num_heads 1024 then makes H·D = 2^31, computed in
    // int by ModelSpec::implied_dnn_input_dim (undefined behaviour; UBSan reports it). 32768 copies
    // overflow D = embedding_dim · k itself in parse_spec.
    for (int k : {32, 32768}) {
        json s;
        s["embedding_dim"] = 65536;
        s["num_heads"] = 1024;
        s["features"] = {{{"name", "t"}, {"type", "categorical"}, {"role", "candidate"}, {"vocab_size", 1}, {"dim", 65536}},
                         {{"name", "s"}, {"type", "sequence"}, {"vocab_size", 1}, {"dim", 65536}, {"max_len", 1}}};
        s["branches"] = {{{"target", std::vector<std::string>(static_cast<std::size_t>(k), "t")},
                          {"sequence", std::vector<std::string>(static_cast<std::size_t>(k), "s")}}};
        s["use_pos_emb"] = false;
        s["attention_hidden_units"] = {4};
        s["attention_activations"] = {"ReLU"};
        s["dnn_hidden_units"] = {4};
        s["dnn_activations"] = {"ReLU"};
        s["dnn_input_dim"] = 1;
        INFO(k << " target fields");
        CHECK_THROWS_AS(dmin::parse_spec(s), dmin::Error);
    }
}

// ---------------------------------------------------------------------------------------------
// Requests (the JSON path of `dmin predict`)

TEST_CASE("hostile requests: extreme and mistyped values", "[hostile][requests]") {
    const auto m = dmin::load(random_path("numeric_context"));
    const auto ref = json::parse(m.reference_json());
    const json base = ref["samples"][0];
    auto doc = [&](const char* feature, const std::string& value) {
        json s = base;
        s.erase(feature);
        std::string text = s.dump();
        text.insert(text.size() - 1, std::string(",\"") + feature + "\":" + value);
        return "{\"samples\":[" + text + "]}";
    };
    REQUIRE_NOTHROW(predict_json(m, json{{"samples", {base}}}.dump()));
    for (const char* v : {"9223372036854775807", "18446744073709551615", "-9223372036854775808", "1e19", "-0.0", "1.5",
                          "null", "true", "\"3\"", "{}", "[1]", "99999999999999999999999"}) {
        INFO("userid = " << v);
        const auto e = error_of([&] { predict_json(m, doc("userid", v)); });
        CHECK_THAT(e, Catch::Contains("userid") || Catch::Contains("not valid JSON"));
        CHECK_THAT(e, !Catch::StartsWith("NOT A") && !Catch::Equals("NO ERROR"));
    }
    for (const char* v : {"1e400", "-1e400", "1e300", "3.5e38", "null", "\"0.5\"", "[0.5]", "NaN", "Infinity"}) {
        INFO("ctx_score = " << v);
        const auto e = error_of([&] { predict_json(m, doc("ctx_score", v)); });
        CHECK_THAT(e, Catch::Contains("ctx_score") || Catch::Contains("not valid JSON"));
        CHECK_THAT(e, !Catch::StartsWith("NOT A") && !Catch::Equals("NO ERROR"));
    }
    SECTION("the same feature twice in one sample") {
        const std::string text = doc("userid", "1");
        const std::string twice = text.substr(0, text.size() - 3) + ",\"userid\":2}]}";
        CHECK_THAT(error_of([&] { predict_json(m, twice); }), Catch::Contains("duplicate key \"userid\""));
    }
    SECTION("invalid UTF-8 and control characters") {
        CHECK_THAT(error_of([&] { predict_json(m, "{\"samples\":[{\"\xc3\x28\":1}]}"); }), Catch::Contains("invalid UTF-8 at offset 14"));
        CHECK_THAT(error_of([&] { predict_json(m, std::string("{\"samples\":[{\"a\x01\":1}]}")); }), Catch::Contains("not valid JSON"));
    }
    SECTION("a million-id sequence") {
        json s = base;
        std::vector<std::int64_t> seq(1000000);
        for (std::size_t i = 0; i < seq.size(); ++i) seq[i] = 1 + static_cast<std::int64_t>(i % 50);
        s["item_hist"] = seq;
        const std::string text = json{{"samples", {s}}}.dump();
        CHECK_THAT(error_of([&] { predict_json(m, text); }), Catch::Contains("item_hist") && Catch::Contains("exceeds max_len"));
        const auto last = predict_json(m, text, dmin::OverlongPolicy::keep_last);
        s["item_hist"] = std::vector<std::int64_t>(seq.end() - 7, seq.end());
        CHECK(last == predict_json(m, json{{"samples", {s}}}.dump()));
    }
    SECTION("no samples, and samples that are not objects") {
        CHECK(predict_json(m, "{\"samples\":[]}").empty());
        CHECK_THAT(error_of([&] { predict_json(m, "{\"samples\":[[]]}"); }), Catch::Contains("sample 0"));
        CHECK_THAT(error_of([&] { predict_json(m, "{\"samples\":{}}"); }), Catch::Contains("samples"));
        CHECK_THAT(error_of([&] { predict_json(m, ""); }), Catch::Contains("not valid JSON"));
    }
}

TEST_CASE("hostile requests: a value nested 200000 deep is a dmin::Error, not a stack overflow", "[hostile][requests]") {
    // samples_from_json reports a wrongly typed value with v.dump(), which recurses once per level.
    // Either parse_strict bounds the depth or the message names the feature.
    const auto m = dmin::load(tiny_path());
    const std::string deep = std::string(200000, '[') + std::string(200000, ']');
    for (const char* feature : {"pid", "click_sequence"}) {
        INFO(feature);
        const auto e = error_of([&] { predict_json(m, std::string("{\"samples\":[{\"") + feature + "\":" + deep + "}]}"); });
        CHECK_THAT(e, Catch::Contains(feature) || Catch::Contains("nest"));
        CHECK_THAT(e, !Catch::StartsWith("NOT A") && !Catch::Equals("NO ERROR"));
    }
}

// ---------------------------------------------------------------------------------------------
// Fast path (SampleView / Candidates)

TEST_CASE("hostile scorer: finite but extreme numeric values never give a NaN probability", "[hostile][scorer]") {
    // Finite inputs are accepted (only NaN/Inf are rejected), so score(), score_reference() and explain()
    // must each return a probability or throw a dmin::Error. ±3e38 gave NaN before def20f0; explain()
    // still returned NaN until it used checked_output too.
    const auto m = dmin::load(random_path("numeric_context"));
    const auto ref = json::parse(m.reference_json());
    dmin::Scorer<dmin::Model<>> sc(m);
    for (double v : {1e4, 1e20, 1e30, 3e38, -3e38}) {
        for (const char* f : {"ctx_score", "price"}) {
            json s = ref["samples"][0];
            s[f] = v;
            std::string outcome;
            float fast = 0.5f, slow = 0.5f, pe = 0.5f;
            const auto smp = dmin::sample_from_json(m, s);
            const auto run = [&](const char* what, auto&& f) {
                try {
                    f();
                    outcome += std::string(what) + " ok; ";
                } catch (const dmin::Error& e) {
                    outcome += std::string(what) + ": " + e.what() + "; ";  // rejecting the value is fine too
                }
            };
            run("score", [&] {
                sc.set_user(smp.view());
                sc.score(sc.candidate_from(smp.view()), &fast);
            });
            run("score_reference", [&] { sc.score_reference(sc.candidate_from(smp.view()), &slow); });
            run("explain", [&] { pe = sc.explain(sc.candidate_from(smp.view()), 0).probability; });
            INFO(f << " = " << v << ": " << outcome << "p = " << fast << " / " << slow << " / " << pe);
            CHECK((fast >= 0.0f && fast <= 1.0f));
            CHECK((slow >= 0.0f && slow <= 1.0f));
            CHECK((pe >= 0.0f && pe <= 1.0f));
        }
    }
}

TEST_CASE("hostile scorer: a failed call leaves the scorer as good as new", "[hostile][scorer]") {
    const auto m = dmin::load(random_path("numeric_context"));
    const auto ref = json::parse(m.reference_json());
    const auto a = dmin::sample_from_json(m, ref["samples"][0]);
    const auto b = dmin::sample_from_json(m, ref["samples"][1]);
    dmin::Scorer<dmin::Model<>> fresh(m), used(m);
    const std::size_t ni = static_cast<std::size_t>(m.num_candidate_ids()), nv = static_cast<std::size_t>(m.num_candidate_values());
    std::vector<std::int64_t> ids(40 * ni);
    std::vector<float> values(40 * nv, 0.25f);
    for (std::size_t c = 0; c < 40; ++c) ids[c * ni] = static_cast<std::int64_t>(c);
    const dmin::Candidates good{40, ids.data(), ni, values.data(), nv};
    std::vector<float> want(40), got(40);
    fresh.set_user(b.view());
    fresh.score(good, want.data());

    used.set_user(a.view());
    auto bad_ids = ids;
    bad_ids[33 * ni] = 1000;
    CHECK_THROWS_AS(used.score({40, bad_ids.data(), ni, values.data(), nv}, got.data()), dmin::Error);  // row 33 of 40
    CHECK_THROWS_AS(used.explain({40, bad_ids.data(), ni, values.data(), nv}, 33), dmin::Error);
    auto bad_user = b.ids();
    bad_user[static_cast<std::size_t>(m.slot(m.spec().feature_index("userid")).offset)] = -5;
    CHECK_THROWS_AS(used.set_user({bad_user.data(), b.values().data()}), dmin::Error);
    CHECK_THROWS_AS(used.score(good, got.data()), dmin::Error);  // no user after a failed set_user
    used.set_user(b.view());
    used.score(good, got.data());
    CHECK(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)) == 0);
}

TEST_CASE("hostile scorer: null arrays, wide strides, junk in ignored slots", "[hostile][scorer]") {
    const auto m = dmin::load(random_path("numeric_context"));
    const auto ref = json::parse(m.reference_json());
    const auto smp = dmin::sample_from_json(m, ref["samples"][0]);
    dmin::Scorer<dmin::Model<>> sc(m);
    sc.set_user(smp.view());
    const std::size_t ni = static_cast<std::size_t>(m.num_candidate_ids()), nv = static_cast<std::size_t>(m.num_candidate_values());
    std::vector<std::int64_t> ids(5 * ni);
    std::vector<float> values(5 * nv, 0.5f);
    for (std::size_t c = 0; c < 5; ++c) ids[c * ni] = static_cast<std::int64_t>(3 * c);
    std::vector<float> want(5);
    sc.score({5, ids.data(), ni, values.data(), nv}, want.data());

    SECTION("explain and score with null arrays are errors, for any candidate index") {
        for (std::size_t c : {0u, 1u, 4u}) {
            INFO("candidate " << c);
            CHECK_THROWS_WITH(sc.explain({5, nullptr, ni, values.data(), nv}, c), Catch::Contains("null"));
            CHECK_THROWS_WITH(sc.explain({5, ids.data(), ni, nullptr, nv}, c), Catch::Contains("null"));
        }
        float p = 0;
        CHECK_THROWS_WITH(sc.score({5, nullptr, ni, values.data(), nv}, &p), Catch::Contains("null"));
        CHECK_THROWS_WITH(sc.score({5, ids.data(), ni, nullptr, nv}, &p), Catch::Contains("null"));
    }
    SECTION("rows wider than the candidate features, junk in the padding") {
        const std::size_t wi = ni + 3, wv = nv + 2;
        std::vector<std::int64_t> wide_ids(5 * wi, -777);
        std::vector<float> wide_values(5 * wv, std::numeric_limits<float>::quiet_NaN());
        for (std::size_t c = 0; c < 5; ++c) {
            std::copy(ids.begin() + static_cast<std::ptrdiff_t>(c * ni), ids.begin() + static_cast<std::ptrdiff_t>((c + 1) * ni),
                      wide_ids.begin() + static_cast<std::ptrdiff_t>(c * wi));
            std::copy(values.begin() + static_cast<std::ptrdiff_t>(c * nv), values.begin() + static_cast<std::ptrdiff_t>((c + 1) * nv),
                      wide_values.begin() + static_cast<std::ptrdiff_t>(c * wv));
        }
        std::vector<float> got(5);
        sc.score({5, wide_ids.data(), wi, wide_values.data(), wv}, got.data());
        CHECK(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)) == 0);
    }
    SECTION("the candidate-role slots of the user view are ignored, whatever they hold") {
        auto uids = smp.ids();
        auto uvals = smp.values();
        for (std::size_t f = 0; f < m.spec().features.size(); ++f) {
            const auto& x = m.spec().features[f];
            if (x.role != dmin::Role::candidate) continue;
            const auto off = static_cast<std::size_t>(m.slot(static_cast<int>(f)).offset);
            if (x.type == dmin::FeatureType::numeric) uvals[off] = std::numeric_limits<float>::infinity();
            else uids[off] = -1;
        }
        sc.set_user({uids.data(), uvals.data()});
        std::vector<float> got(5);
        sc.score({5, ids.data(), ni, values.data(), nv}, got.data());
        CHECK(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)) == 0);
    }
}

TEST_CASE("hostile files: replacing a mapped model's file by rename does not disturb the model", "[hostile][loader][mmap]") {
    const std::string path = Raw::read(tiny_path()).write("renamed");
    dmin::LoadOptions opts;
    opts.map_tables_larger_than = 0;
    const auto m = dmin::load(path, opts);
    REQUIRE(m.mapped_bytes() > 0);
    const auto ref = json::parse(m.reference_json());
    const std::string text = json{{"samples", ref["samples"]}}.dump();
    const auto before = predict_json(m, text);
    Raw other = Raw::read(tiny_path());
    std::fill(other.data.begin(), other.data.end(), '\0');
    const std::string tmp = other.write("renamed_new");
    REQUIRE(std::rename(tmp.c_str(), path.c_str()) == 0);
    CHECK(predict_json(m, text) == before);
    // The new file is what a new load sees: its zeroed weights fail the stored reference pair (the
    // self-test is on by default), and without the self-test they score differently.
    REQUIRE_THROWS_WITH(dmin::load(path), Catch::Contains("self-test failed"));
    dmin::LoadOptions unchecked;
    unchecked.self_test = false;
    const auto zeros = dmin::load(path, unchecked);
    CHECK(predict_json(zeros, text) != before);
}
