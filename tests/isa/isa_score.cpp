// One instruction set's half of the mixed-instruction-set test: loads a model and scores requests with
// the dmin this translation unit's flags select. tests/CMakeLists.txt builds it once per flag set,
// each time defining DMIN_ISA_ENTRY as that set's function (isa_score.hpp).
#include "isa_score.hpp"

#include <dmin/dmin.hpp>

#include <random>

namespace {

using Model = dmin::Model<>;

/// A value in [-2, 2] from integers and one division: no a·b + c that the compiler could contract
/// differently per instruction set (std::uniform_real_distribution has one, in every translation unit).
float draw_value(std::mt19937& rng) { return static_cast<float>(static_cast<int>(rng() % 4001u) - 2000) / 1000.0f; }
std::int64_t draw_id(std::mt19937& rng, const dmin::FeatureSpec& f) {
    return static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(f.vocab_size));
}

/// A user with sequences 70% full, and n candidates: ids and values in the model's candidate layout.
struct Request {
    dmin::Sample user;
    std::vector<std::int64_t> ids;
    std::vector<float> values;
    std::size_t n, ni, nv;

    Request(const Model& m, std::size_t count, std::mt19937& rng) : user(m), n(count) {
        ni = static_cast<std::size_t>(std::max(1, m.num_candidate_ids()));
        nv = static_cast<std::size_t>(std::max(1, m.num_candidate_values()));
        ids.assign(n * ni, 0);
        values.assign(n * nv, 0.0f);
        const auto& features = m.spec().features;
        for (std::size_t f = 0; f < features.size(); ++f) {
            const auto& x = features[f];
            const auto at = static_cast<std::size_t>(m.slot(static_cast<int>(f)).cand_offset);
            if (x.role == dmin::Role::candidate) {
                for (std::size_t c = 0; c < n; ++c) {
                    if (x.type == dmin::FeatureType::numeric) values[c * nv + at] = draw_value(rng);
                    else ids[c * ni + at] = draw_id(rng, x);
                }
            } else if (x.type == dmin::FeatureType::numeric) {
                user.set_value(x.name, draw_value(rng));
            } else if (x.type == dmin::FeatureType::categorical) {
                user.set(x.name, draw_id(rng, x));
            } else {
                std::vector<std::int64_t> seq(static_cast<std::size_t>(x.max_len) * 7 / 10);
                for (auto& id : seq) id = std::max<std::int64_t>(1, draw_id(rng, x));
                user.set(x.name, seq);
            }
        }
    }
    dmin::Candidates candidates(std::size_t first, std::size_t count) const {
        return {count, ids.data() + first * ni, ni, values.data() + first * nv, nv};
    }
};

}  // namespace

namespace dmin_isa_test {

/// The reference samples (fast path, then Scorer::predict), then a random request of 77 candidates
/// (two blocks of 32 and a tail) scored together, on the reference path, and the first 5 one at a time.
Scores DMIN_ISA_ENTRY(const std::string& model_path) {
    const auto model = dmin::load(model_path);
    dmin::Scorer<Model> scorer(model);
    Scores s;
    s.isa = dmin::kernels::isa_name;
    const auto doc = dmin::io::parse_strict(model.reference_json(), "reference");
    const auto samples = dmin::samples_from_json(model, doc);
    for (const auto& want : doc.at("predictions")) s.want.push_back(want.get<double>());
    for (const auto& x : samples) {
        float p = 0;
        scorer.set_user(x.view());
        scorer.score(scorer.candidate_from(x.view()), &p);
        s.p.push_back(p);
    }
    for (const auto& x : samples) s.p.push_back(scorer.predict(x.view()));
    std::mt19937 rng(19);
    const Request req(model, 77, rng);
    scorer.set_user(req.user.view());
    std::vector<float> batch(req.n), reference(req.n), alone(5);
    scorer.score(req.candidates(0, req.n), batch.data());
    scorer.score_reference(req.candidates(0, req.n), reference.data());
    for (std::size_t c = 0; c < alone.size(); ++c) scorer.score(req.candidates(c, 1), &alone[c]);
    for (const auto* v : {&batch, &reference, &alone}) s.p.insert(s.p.end(), v->begin(), v->end());
    return s;
}

}  // namespace dmin_isa_test
