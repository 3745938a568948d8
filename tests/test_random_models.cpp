// Fresh random models from the PyTorch reference (python/dmin_ref/fixtures.py, float64 reference values):
// end to end and every intermediate, on both the FuxiCTR-form path and the factorised fast path.
#include "catch.hpp"

#include <fstream>
#include <map>

#include "test_util.hpp"

namespace {

/// The reference tensors of one fixture config (name → values).
struct Reference {
    std::map<std::string, std::vector<float>> t;
    dmin::io::json samples;

    explicit Reference(const std::string& path) {
        dmin::io::SafetensorsFile f(path);
        std::ifstream in(path, std::ios::binary);
        for (const auto& info : f.tensors()) {
            std::vector<float> v(static_cast<std::size_t>(info.numel()));
            f.read_f32(in, info, v.data());
            t[info.name] = std::move(v);
        }
        samples = dmin::io::json::parse(f.meta("samples"));
    }
    const std::vector<float>& at(const std::string& k) const {
        auto it = t.find(k);
        if (it == t.end()) throw std::runtime_error("reference tensor missing: " + k);
        return it->second;
    }
};

void require_close(const float* got, const std::vector<float>& want, std::size_t n, const std::string& what) {
    REQUIRE(want.size() == n);
    double worst = 0;
    std::size_t at = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const double d = std::fabs(got[i] - want[i]) - 1e-5 * std::fabs(want[i]);
        if (d > worst) { worst = d; at = i; }
    }
    INFO(what << ": worst excess over 1e-5|ref| is " << worst << " at " << at << " (got " << got[at] << ", want " << want[at] << ")");
    REQUIRE(worst <= 1e-5);
}

std::vector<std::string> configs() {
    const auto idx = dmin_test::read_json(dmin_test::work_dir() + "/random/index.json");
    return idx.at("configs").get<std::vector<std::string>>();
}

void check_config(const std::string& name) {
    const std::string base = dmin_test::work_dir() + "/random/" + name;
    const auto model = dmin::load(base + ".safetensors", dmin::LoadOptions{true});
    const Reference ref(base + ".ref.safetensors");
    dmin::Scorer<dmin::Model<>> scorer(model);
    const auto& spec = model.spec();
    for (std::size_t k = 0; k < ref.samples.size(); ++k) {
        const auto sample = dmin::sample_from_json(model, ref.samples[k]);
        const std::string s = "s" + std::to_string(k);
        INFO(name << " sample " << k << ": " << ref.samples[k].dump());
        float slow = 0, fast = 0;
        scorer.set_user(sample.view());
        for (std::size_t b = 0; b < spec.branches.size(); ++b) {
            const auto L = static_cast<std::size_t>(spec.branches[b].L), D = static_cast<std::size_t>(spec.branches[b].D);
            const std::string pb = s + ".b" + std::to_string(b);
            require_close(scorer.refined(b), ref.at(pb + ".refined"), L * D, pb + ".refined");
            const auto& z = ref.at(pb + ".z");
            for (int h = 0; h < spec.num_heads; ++h)
                require_close(scorer.z(b, h), std::vector<float>(z.begin() + static_cast<std::ptrdiff_t>(h * L * D),
                                                                 z.begin() + static_cast<std::ptrdiff_t>((h + 1) * L * D)),
                              L * D, pb + ".z head " + std::to_string(h));
        }
        const auto one = scorer.candidate_from(sample.view());
        for (int path = 0; path < 2; ++path) {
            const char* pname = path == 0 ? "reference path" : "fast path";
            float& p = path == 0 ? slow : fast;
            if (path == 0) scorer.score_reference(one, &p);
            else scorer.score(one, &p);
            for (std::size_t b = 0; b < spec.branches.size(); ++b) {
                const auto L = static_cast<std::size_t>(spec.branches[b].L), D = static_cast<std::size_t>(spec.branches[b].D);
                const std::string pb = s + ".b" + std::to_string(b);
                const auto& a = ref.at(pb + ".attn");
                const auto& I = ref.at(pb + ".interests");
                for (int h = 0; h < spec.num_heads; ++h) {
                    const auto hh = static_cast<std::size_t>(h);
                    require_close(scorer.weights(b, h), std::vector<float>(a.begin() + static_cast<std::ptrdiff_t>(hh * L), a.begin() + static_cast<std::ptrdiff_t>((hh + 1) * L)),
                                  L, pb + ".attn head " + std::to_string(h) + " " + pname);
                    require_close(scorer.interest(b, h), std::vector<float>(I.begin() + static_cast<std::ptrdiff_t>(hh * D), I.begin() + static_cast<std::ptrdiff_t>((hh + 1) * D)),
                                  D, pb + ".interests head " + std::to_string(h) + " " + pname);
                }
            }
            if (path == 0) {
                const auto x = scorer.dnn_input();
                require_close(x.data(), ref.at(s + ".dnn_input"), x.size(), s + ".dnn_input");
            }
            require_close(&p, ref.at(s + ".prob"), 1, s + ".prob " + pname);
        }
    }
}

}  // namespace

TEST_CASE("random reference models: every intermediate and the output", "[random]") {
    const auto names = configs();
    REQUIRE(names.size() >= 12);
    for (const auto& n : names) {
        SECTION(n) { check_config(n); }
    }
}

TEST_CASE("random reference models: compile-time shape equals runtime shape within 1e-6", "[random]") {
    const std::string base = dmin_test::work_dir() + "/random/tuple_bn_dice_dropout";
    using Fixed = dmin::Model<dmin::Shape<32, 10, 4, 8, dmin::Units<32, 16>, dmin::Units<64, 32>, 176>>;
    const auto fixed = dmin::load<Fixed>(base + ".safetensors");
    const auto dyn = dmin::load(base + ".safetensors");
    const Reference ref(base + ".ref.safetensors");
    dmin::Scorer<Fixed> sf(fixed);
    dmin::Scorer<dmin::Model<>> sd(dyn);
    for (const auto& js : ref.samples) {
        const auto a = dmin::sample_from_json(fixed, js);
        float pf = 0, pd = 0;
        sf.set_user(a.view());
        sd.set_user(a.view());
        sf.score(sf.candidate_from(a.view()), &pf);
        sd.score(sd.candidate_from(a.view()), &pd);
        CHECK(std::fabs(pf - pd) <= 1e-6f);
    }
}
