// bf16 precision (issue 20): the measured error against float32 scoring and against FuxiCTR on every
// FuxiCTR case and random reference configuration, the world model's AUC, the batch independence of a
// candidate's bf16 score, the self-test's tolerance, and the load-time instruction-set check.
#include "catch.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <vector>

#include "test_util.hpp"

namespace {

dmin::LoadOptions options(dmin::Precision p, bool self_test = true) {
    dmin::LoadOptions o;
    o.self_test = self_test;
    o.precision = p;
    return o;
}

/// max and mean of |Δp| over a case.
struct Deviation {
    double max = 0, sum = 0;
    std::size_t n = 0;
    void add(double a, double b) {
        const double d = std::fabs(a - b);
        max = std::max(max, d);
        sum += d;
        ++n;
    }
    double mean() const { return n ? sum / static_cast<double>(n) : 0.0; }
    void require_within(double max_bound, double mean_bound, const std::string& what) const {
        INFO(what << ": max |dp| " << max << ", mean " << mean() << " over " << n);
        REQUIRE(n > 0);
        REQUIRE(max <= max_bound);
        REQUIRE(mean() <= mean_bound);
    }
};

/// Every sample's candidate rows, one after another (stride = the model's candidate row width), so that
/// they can be scored as one batch for one user: the lane path on real candidates.
struct CandidateRows {
    std::vector<std::int64_t> ids;
    std::vector<float> values;
    std::size_t ni = 1, nv = 1, n = 0;
    CandidateRows(dmin::Scorer<dmin::Model<>>& sc, const std::vector<dmin::Sample>& samples) {
        for (const auto& s : samples) {
            const auto c = sc.candidate_from(s.view());
            ni = c.id_stride, nv = c.value_stride;
            ids.insert(ids.end(), c.ids, c.ids + ni);
            values.insert(values.end(), c.values, c.values + nv);
            ++n;
        }
    }
    dmin::Candidates all() const { return {n, ids.data(), ni, values.data(), nv}; }
    dmin::Candidates one(std::size_t c) const { return {1, ids.data() + c * ni, ni, values.data() + c * nv, nv}; }
};

/// The samples scored one request each in float32 and in bf16 (the fast path); bf16 against float32 and
/// against `want`, within (max_bound, mean_bound). Then the user that bf16 moved most (so one with valid
/// positions) with every sample's candidate as one batch: the bf16 batch (lanes) equals each candidate
/// scored alone bit for bit, and stays within the bound of float32's batch.
void compare(const dmin::Model<>& f32, const dmin::Model<>& b16, const std::vector<dmin::Sample>& samples, const std::vector<double>& want,
             const std::string& name, double max_bound, double mean_bound) {
    dmin::Scorer<dmin::Model<>> sf(f32), sb(b16);
    Deviation vs_f32, vs_want, f32_vs_want, batch;
    std::size_t user = 0;
    for (std::size_t i = 0; i < samples.size(); ++i) {
        sf.set_user(samples[i].view());
        sb.set_user(samples[i].view());
        float pf = 0, pb = 0;
        sf.score(sf.candidate_from(samples[i].view()), &pf);
        sb.score(sb.candidate_from(samples[i].view()), &pb);
        if (std::fabs(pb - pf) > vs_f32.max) user = i;
        vs_f32.add(pb, pf);
        vs_want.add(pb, want[i]);
        f32_vs_want.add(pf, want[i]);
    }
    const CandidateRows rows(sb, samples);
    sf.set_user(samples[user].view());
    sb.set_user(samples[user].view());
    std::vector<float> pf(rows.n), pb(rows.n);
    sf.score(rows.all(), pf.data());
    sb.score(rows.all(), pb.data());
    for (std::size_t c = 0; c < rows.n; ++c) {
        float alone = -1;
        sb.score(rows.one(c), &alone);
        INFO(name << ": candidate " << c << " of the batch");
        REQUIRE(alone == pb[c]);
        batch.add(pb[c], pf[c]);
    }
    WARN(name << ": bf16 vs float32 max " << vs_f32.max << " mean " << vs_f32.mean() << "; bf16 vs reference max " << vs_want.max
              << " mean " << vs_want.mean() << " (float32 vs reference max " << f32_vs_want.max << "); batch of " << rows.n
              << " for user " << user << ", bf16 vs float32 max " << batch.max << " mean " << batch.mean());
    vs_f32.require_within(max_bound, mean_bound, name + " bf16 vs float32");
    vs_want.require_within(max_bound, mean_bound, name + " bf16 vs reference");
    // The batch belongs to the user bf16 moved most: its mean is not a case's mean, its max is bounded.
    batch.require_within(max_bound, max_bound, name + " one user's batch, bf16 vs float32");
}

}  // namespace

TEST_CASE("bf16: every FuxiCTR case within the bound of float32 and of FuxiCTR's predictions", "[bf16]") {
    for (const char* c : {"tiny_seq_trained", "heads2_dice_bn", "heads4_prelu", "sum_pooling"}) {
        SECTION(c) {
            const std::string file = dmin_test::work_dir() + "/fuxictr/" + c + ".safetensors";
            // The bf16 load replays the stored reference pair with the bf16 tolerance.
            const auto f32 = dmin::load(file), b16 = dmin::load(file, options(dmin::Precision::bf16));
            REQUIRE(b16.precision() == dmin::Precision::bf16);
            REQUIRE(b16.resident_bytes() > f32.resident_bytes());  // the pairs live beside the float32 weights
            const auto inputs = dmin_test::read_json(dmin_test::data_dir() + "/fuxictr/" + c + "/inputs.json");
            const auto expected = dmin_test::read_json(dmin_test::data_dir() + "/fuxictr/" + c + "/expected.json");
            compare(f32, b16, dmin::samples_from_json(f32, inputs), expected.at("y_pred").get<std::vector<double>>(), c,
                    dmin::kBf16MaxAbsDiff, dmin::kBf16MeanAbsDiff);
        }
    }
}

TEST_CASE("bf16: with the DNN in bf16 too (bf16_dnn), every FuxiCTR case within its wider bound", "[bf16]") {
    for (const char* c : {"tiny_seq_trained", "heads2_dice_bn", "heads4_prelu", "sum_pooling"}) {
        SECTION(c) {
            const std::string file = dmin_test::work_dir() + "/fuxictr/" + c + ".safetensors";
            auto o = options(dmin::Precision::bf16);
            o.bf16_dnn = true;  // and the load's self-test passes with it
            const auto f32 = dmin::load(file), att = dmin::load(file, options(dmin::Precision::bf16)), all = dmin::load(file, o);
            const auto inputs = dmin_test::read_json(dmin_test::data_dir() + "/fuxictr/" + c + "/inputs.json");
            const auto expected = dmin_test::read_json(dmin_test::data_dir() + "/fuxictr/" + c + "/expected.json");
            const auto samples = dmin::samples_from_json(f32, inputs);
            compare(f32, all, samples, expected.at("y_pred").get<std::vector<double>>(), std::string(c) + " bf16_dnn",
                    dmin::kBf16DnnMaxAbsDiff, dmin::kBf16DnnMeanAbsDiff);
            // The option reaches the DNN: its rounding changes scores that the attention alone left.
            dmin::Scorer<dmin::Model<>> sa(att), sd(all);
            std::size_t changed = 0;
            for (const auto& s : samples) {
                float pa = 0, pd = 0;
                sa.set_user(s.view());
                sd.set_user(s.view());
                sa.score(sa.candidate_from(s.view()), &pa);
                sd.score(sd.candidate_from(s.view()), &pd);
                changed += pa != pd;
            }
            CHECK(changed > samples.size() / 2);
        }
    }
}

TEST_CASE("bf16: every random reference configuration within the bound for untrained random weights", "[bf16]") {
    const auto idx = dmin_test::read_json(dmin_test::work_dir() + "/random/index.json");
    for (const auto& name : idx.at("configs").get<std::vector<std::string>>()) {
        SECTION(name) {
            const std::string base = dmin_test::work_dir() + "/random/" + name;
            const auto f32 = dmin::load(base + ".safetensors"), b16 = dmin::load(base + ".safetensors", options(dmin::Precision::bf16));
            dmin::io::SafetensorsFile ref(base + ".ref.safetensors");
            const auto js = dmin::io::json::parse(ref.meta("samples"));
            std::vector<dmin::Sample> samples;
            std::vector<double> want;
            std::ifstream in(base + ".ref.safetensors", std::ios::binary);
            for (std::size_t k = 0; k < js.size(); ++k) {
                samples.push_back(dmin::sample_from_json(f32, js[k]));
                const auto* t = ref.find("s" + std::to_string(k) + ".prob");
                REQUIRE(t);
                float p = 0;
                ref.read_f32(in, *t, &p);
                want.push_back(p);
            }
            if (f32.spec().regression())  // an output of order max(1, |y|), see kBf16RegressionRelative
                compare(f32, b16, samples, want, name, dmin_test::kBf16RegressionRelative, dmin_test::kBf16RegressionRelative);
            else
                compare(f32, b16, samples, want, name, dmin_test::kBf16RandomMax, dmin_test::kBf16RandomMean);
        }
    }
}

TEST_CASE("bf16: the world model's held-out AUC moves by at most 0.001", "[bf16][world]") {
    const std::string dir = std::string(DMIN_EXAMPLES_DIR) + "/models";
    const auto f32 = dmin::load(dir + "/multi_interest_world.safetensors");
    const auto b16 = dmin::load(dir + "/multi_interest_world.safetensors", options(dmin::Precision::bf16));
    const auto doc = dmin_test::read_json(dir + "/world_heldout.json");
    const auto samples = dmin::samples_from_json(f32, doc);
    const auto labels = doc.at("labels").get<std::vector<int>>();
    dmin::Scorer<dmin::Model<>> sf(f32), sb(b16);
    std::vector<double> pf(samples.size()), pb(samples.size());
    Deviation d;
    for (std::size_t i = 0; i < samples.size(); ++i) {
        float a = 0, b = 0;
        sf.set_user(samples[i].view());
        sb.set_user(samples[i].view());
        sf.score(sf.candidate_from(samples[i].view()), &a);
        sb.score(sb.candidate_from(samples[i].view()), &b);
        pf[i] = a, pb[i] = b;
        d.add(a, b);
    }
    const double auc_f32 = dmin_test::roc_auc(labels, pf), auc_bf16 = dmin_test::roc_auc(labels, pb);
    WARN("world model: AUC float32 " << auc_f32 << ", bf16 " << auc_bf16 << "; |dp| max " << d.max << " mean " << d.mean() << " over "
                                     << d.n);
    CHECK(std::fabs(auc_bf16 - auc_f32) <= 1e-3);
    d.require_within(dmin::kBf16MaxAbsDiff, dmin::kBf16MeanAbsDiff, "world model");
}

TEST_CASE("bf16: a build using vdpbf16ps refuses, with a dmin::Error, a CPU without AVX512_BF16", "[bf16]") {
    const std::string file = dmin_test::work_dir() + "/fuxictr/tiny_seq_trained.safetensors";
    const char* before = std::getenv("DMIN_CPU_DISABLE");
    const std::string saved = before ? before : "";
    ::setenv("DMIN_CPU_DISABLE", "avx512_bf16", 1);
    bool threw = false;
    std::string msg;
    try {
        (void)dmin::load(file, options(dmin::Precision::bf16));
    } catch (const dmin::Error& e) {
        threw = true;
        msg = e.what();
    }
    (void)dmin::load(file);  // float32 needs nothing special
    if (before) ::setenv("DMIN_CPU_DISABLE", saved.c_str(), 1);
    else ::unsetenv("DMIN_CPU_DISABLE");
    INFO(msg);
    CHECK(threw == dmin::kernels::kBf16Native);  // other builds widen bf16 in registers: they load
    if (threw) CHECK_THAT(msg, Catch::Contains("AVX512_BF16"));
}

TEST_CASE("bf16: the self-test replays the fast path with the bf16 tolerance, the reference path with the file's", "[bf16]") {
    const std::string file = dmin_test::work_dir() + "/fuxictr/heads2_dice_bn.safetensors";
    const auto b16 = dmin::load(file, options(dmin::Precision::bf16, false));
    const auto r = dmin::replay_reference(b16);
    CHECK(r.passed);
    CHECK(r.fast_tolerance == dmin::kBf16SelfTestTolerance);  // the fast path's, in bf16
    CHECK(r.tolerance < dmin::kBf16MaxAbsDiff);                // the float32 reference path keeps the file's
    CHECK(r.max_abs_diff <= r.tolerance);
    CHECK(r.fast_max_abs_diff <= dmin::kBf16MaxAbsDiff);
    const auto f = dmin::replay_reference(dmin::load(file));
    CHECK(f.fast_tolerance == f.tolerance);
}

// ---- LoadOptions::bf16_tables: embedding tables kept in bf16 in memory, or mapped in place

namespace {

/// The file at `src` with every tensor in BF16 (rounded to nearest even), the layout `tools/dmin-export
/// --dtype bf16` writes, under the test work directory as `name`. The metadata is kept as is, so its
/// reference pair is the float32 file's: load the copy without the self-test.
std::string bf16_file_copy(const std::string& src, const std::string& name) {
    const std::string bytes = dmin_test::slurp(src);
    const std::uint64_t n = dmin_test::header_length(bytes);
    auto header = dmin::io::json::parse(bytes.substr(8, n));
    std::vector<std::pair<std::uint64_t, std::string>> order;  // tensors in file order
    for (auto it = header.begin(); it != header.end(); ++it)
        if (it.key() != "__metadata__") order.emplace_back(it->at("data_offsets")[0].get<std::uint64_t>(), it.key());
    std::sort(order.begin(), order.end());
    std::string data;
    for (const auto& [begin, key] : order) {
        auto& e = header[key];
        const auto end = e["data_offsets"][1].get<std::uint64_t>(), start = static_cast<std::uint64_t>(data.size());
        for (std::uint64_t i = begin; i < end; i += 4) {
            float f;
            std::memcpy(&f, bytes.data() + 8 + n + i, sizeof f);
            const std::uint16_t w = dmin::kernels::to_bf16(f);
            data.push_back(static_cast<char>(w & 0xFF));
            data.push_back(static_cast<char>(w >> 8));
        }
        e["dtype"] = "BF16";
        e["data_offsets"] = {start, static_cast<std::uint64_t>(data.size())};
    }
    std::string text = header.dump();
    while ((8 + text.size()) % 64 != 0) text += ' ';
    const std::string path = dmin_test::work_dir() + "/" + name;
    dmin_test::write_bytes(path, dmin_test::le64(text.size()) + text + data);
    return path;
}

dmin::LoadOptions table_options(bool bf16_tables, std::uint64_t map_larger_than, dmin::Precision p = dmin::Precision::float32) {
    auto o = options(p, /*self_test=*/false);
    o.bf16_tables = bf16_tables;
    o.map_tables_larger_than = map_larger_than;
    return o;
}

/// The model's categorical and sequence tables (each shared table once): their values, and the bytes
/// they take as float32 in the model's storage (each in its own padded block, as dmin::Arena gives it).
struct TableSizes {
    std::size_t values = 0, f32_bytes = 0;
    explicit TableSizes(const dmin::ModelSpec& s) {
        std::map<std::string, std::size_t> seen;
        for (const auto& f : s.features)
            if (f.type != dmin::FeatureType::numeric) seen[f.table] = static_cast<std::size_t>(f.vocab_size) * static_cast<std::size_t>(f.dim);
        for (const auto& kv : seen) {
            dmin::Arena block;
            block.take(kv.second);
            values += kv.second;
            f32_bytes += block.used() * sizeof(float);
        }
    }
    std::size_t bf16_bytes() const { return 2 * values; }
};

/// Every held-out world sample scored one request each, and the first 300 samples' candidates as one
/// batch for the first user: the probabilities, in that order.
std::vector<float> world_scores(const dmin::Model<>& m, const std::vector<dmin::Sample>& samples) {
    std::vector<float> out = dmin_test::score_each(m, samples);
    dmin::Scorer<dmin::Model<>> sc(m);
    const std::vector<dmin::Sample> head(samples.begin(), samples.begin() + static_cast<std::ptrdiff_t>(std::min<std::size_t>(300, samples.size())));
    const CandidateRows rows(sc, head);
    sc.set_user(samples[0].view());
    std::vector<float> batch(rows.n);
    sc.score(rows.all(), batch.data());
    out.insert(out.end(), batch.begin(), batch.end());
    return out;
}

}  // namespace

TEST_CASE("bf16 tables: a BF16 file scores bit for bit the same with its tables widened, kept in bf16, or mapped in place",
          "[bf16][bf16_tables]") {
    const std::string dir = std::string(DMIN_EXAMPLES_DIR) + "/models";
    const std::string file = bf16_file_copy(dir + "/multi_interest_world.safetensors", "world_bf16.safetensors");
    const auto never = std::numeric_limits<std::uint64_t>::max();
    const auto widened = dmin::load(file, table_options(false, 0));  // BF16 tables are never mapped as float32
    const auto kept = dmin::load(file, table_options(true, never));
    const auto mapped = dmin::load(file, table_options(true, 0));
    const TableSizes tables(widened.spec());
    REQUIRE(widened.mapped_bytes() == 0);
    REQUIRE(kept.mapped_bytes() == 0);
    REQUIRE(widened.resident_bytes() - kept.resident_bytes() == tables.f32_bytes - tables.bf16_bytes());  // 4 bytes a value become 2
    REQUIRE(mapped.mapped_bytes() == tables.bf16_bytes());                                                // the file's bytes, in place
    REQUIRE(widened.resident_bytes() - mapped.resident_bytes() == tables.f32_bytes);

    const auto samples = dmin::samples_from_json(widened, dmin_test::read_json(dir + "/world_heldout.json"));
    const auto want = world_scores(widened, samples);
    REQUIRE(world_scores(kept, samples) == want);
    REQUIRE(world_scores(mapped, samples) == want);
    // The same holds under bf16 precision: the tables feed its products the same float32 values.
    const auto b16 = dmin::load(file, table_options(false, 0, dmin::Precision::bf16));
    REQUIRE(world_scores(dmin::load(file, table_options(true, 0, dmin::Precision::bf16)), samples) == world_scores(b16, samples));
}

TEST_CASE("bf16 tables: an F32 file's tables rounded at load stay within their bound on every FuxiCTR case", "[bf16][bf16_tables]") {
    for (const char* c : {"tiny_seq_trained", "heads2_dice_bn", "heads4_prelu", "sum_pooling"}) {
        SECTION(c) {
            const std::string file = dmin_test::work_dir() + "/fuxictr/" + c + ".safetensors";
            auto o = options(dmin::Precision::float32);
            o.bf16_tables = true;  // the self-test passes: its tolerance widens to kBf16SelfTestTolerance
            const auto f32 = dmin::load(file), tables = dmin::load(file, o);
            REQUIRE(tables.bf16_tables());
            REQUIRE(dmin::replay_reference(tables).tolerance == dmin::kBf16SelfTestTolerance);
            const TableSizes sizes(f32.spec());
            REQUIRE(f32.resident_bytes() - tables.resident_bytes() == sizes.f32_bytes - sizes.bf16_bytes());
            const auto inputs = dmin_test::read_json(dmin_test::data_dir() + "/fuxictr/" + c + "/inputs.json");
            const auto expected = dmin_test::read_json(dmin_test::data_dir() + "/fuxictr/" + c + "/expected.json");
            compare(f32, tables, dmin::samples_from_json(f32, inputs), expected.at("y_pred").get<std::vector<double>>(),
                    std::string(c) + " bf16 tables", dmin::kBf16TablesMaxAbsDiff, dmin::kBf16TablesMeanAbsDiff);
        }
    }
}

TEST_CASE("bf16 tables: the world model's held-out AUC moves by at most 0.001", "[bf16][bf16_tables][world]") {
    const std::string dir = std::string(DMIN_EXAMPLES_DIR) + "/models";
    auto o = options(dmin::Precision::float32);
    o.bf16_tables = true;
    const auto f32 = dmin::load(dir + "/multi_interest_world.safetensors"), tables = dmin::load(dir + "/multi_interest_world.safetensors", o);
    const auto doc = dmin_test::read_json(dir + "/world_heldout.json");
    const auto samples = dmin::samples_from_json(f32, doc);
    const auto labels = doc.at("labels").get<std::vector<int>>();
    const auto pf = world_scores(f32, samples), pt = world_scores(tables, samples);
    Deviation d;
    for (std::size_t i = 0; i < pf.size(); ++i) d.add(pf[i], pt[i]);
    const std::vector<double> held_f(pf.begin(), pf.begin() + static_cast<std::ptrdiff_t>(samples.size())),
        held_t(pt.begin(), pt.begin() + static_cast<std::ptrdiff_t>(samples.size()));
    const double auc_f32 = dmin_test::roc_auc(labels, held_f), auc_tables = dmin_test::roc_auc(labels, held_t);
    WARN("world model, bf16 tables: AUC float32 " << auc_f32 << ", bf16 tables " << auc_tables << "; |dp| max " << d.max << " mean "
                                                  << d.mean() << " over " << d.n);
    CHECK(std::fabs(auc_tables - auc_f32) <= 1e-3);
    d.require_within(dmin::kBf16TablesMaxAbsDiff, dmin::kBf16TablesMeanAbsDiff, "world model, bf16 tables");
}

TEST_CASE("bf16 tables: a table value beyond bf16's range or not finite is a clear load error", "[bf16][bf16_tables][errors]") {
    const std::string src = dmin_test::work_dir() + "/fuxictr/tiny_seq_trained.safetensors";
    const auto m = dmin::load(src);
    const auto& table = m.spec().features[0].table;  // a categorical table (user_id)
    REQUIRE(m.spec().features[0].type != dmin::FeatureType::numeric);
    // Patch the table's first value in a copy of the F32 file, then of its BF16 copy.
    const std::string bytes = dmin_test::slurp(src);
    const std::uint64_t n = dmin_test::header_length(bytes);
    const auto at = 8 + n + dmin::io::json::parse(bytes.substr(8, n))[table]["data_offsets"][0].get<std::uint64_t>();
    std::string big = bytes;
    const float huge = 3.4e38f;  // finite in float32, rounds past bf16's largest value
    std::memcpy(&big[at], &huge, sizeof huge);
    const std::string big_path = dmin_test::work_dir() + "/bf16_tables_huge.safetensors";
    dmin_test::write_bytes(big_path, big);
    REQUIRE_NOTHROW(dmin::load(big_path, table_options(false, 0)));  // float32 tables keep it
    try {
        (void)dmin::load(big_path, table_options(true, 0));
        FAIL("expected dmin::Error");
    } catch (const dmin::Error& e) {
        CHECK_THAT(e.what(), Catch::Contains("tensor " + table) && Catch::Contains("beyond bf16's range") && Catch::Contains("flat index 0"));
    }
    // A BF16 file holding an infinity: rejected whether the table is copied or mapped in place.
    std::string inf_bytes = dmin_test::slurp(bf16_file_copy(src, "bf16_tables_inf_src.safetensors"));
    const std::uint64_t hn = dmin_test::header_length(inf_bytes);
    const auto hat = 8 + hn + dmin::io::json::parse(inf_bytes.substr(8, hn))[table]["data_offsets"][1].get<std::uint64_t>() - 2;
    inf_bytes[hat] = static_cast<char>(0x80), inf_bytes[hat + 1] = static_cast<char>(0xFF);  // the last value: -inf (0xFF80)
    const std::string inf_path = dmin_test::work_dir() + "/bf16_tables_inf.safetensors";
    dmin_test::write_bytes(inf_path, inf_bytes);
    for (std::uint64_t map : {std::uint64_t{0}, std::numeric_limits<std::uint64_t>::max()})
        for (bool keep : {false, true}) {
            INFO("bf16_tables " << keep << ", map_tables_larger_than " << map);
            try {
                (void)dmin::load(inf_path, table_options(keep, map));
                FAIL("expected dmin::Error");
            } catch (const dmin::Error& e) {
                CHECK_THAT(e.what(), Catch::Contains("tensor " + table) && Catch::Contains("non-finite value (-inf)"));
            }
        }
}
