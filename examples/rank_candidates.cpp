// Ranks N candidates (default 500) for one request with a DMIN model and explains the top 10.
//   rank_candidates MODEL.safetensors [--candidates N] [--seed S] [--catalog FILE | --no-catalog]
//
// With a catalog (item -> category map and category names; MODEL.catalog.json next to the model is
// picked up automatically, e.g. examples/models/multi_interest_world.catalog.json) it builds a
// realistic request: a user whose history interleaves items of 3 categories, and candidates drawn
// from the whole catalog. Without one, every id is random (works for any model file).
// For each of the top 10 it prints the probability, the candidate's ids, the interest head that
// drove the score (Scorer::explain: largest logit contribution) and the history position that head
// attends to most; then the request latency (set_user + score).
#include <dmin/dmin.hpp>

#include "random_request.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

/// Item -> category map of a synthetic world (python/world/train.py writes it next to the model).
struct Catalog {
    int item_f = -1, cate_f = -1, item_hist_f = -1, cate_hist_f = -1;  // feature indices in the model
    std::vector<std::int64_t> item_category;                              // index = item id
    std::vector<std::string> category_names;                              // index = cate id
    std::vector<std::vector<std::int64_t>> items_of;                      // cate id -> its items

    std::string category(std::int64_t c) const {
        if (c >= 0 && static_cast<std::size_t>(c) < category_names.size() && !category_names[static_cast<std::size_t>(c)].empty())
            return category_names[static_cast<std::size_t>(c)];
        return "cate " + std::to_string(c);
    }
};

bool file_exists(const std::string& path) { return static_cast<bool>(std::ifstream(path)); }

/// Checks a parsed catalog against the model and indexes it; false (with a note) if it does not fit.
bool parse_catalog(const dmin::io::json& doc, const dmin::Model<>& model, Catalog& cat, const std::string& path) {
    const auto& spec = model.spec();
    auto feature = [&](const char* key, dmin::FeatureType type, bool candidate) {
        const int f = spec.feature_index(doc.at(key).get<std::string>());
        if (f < 0) return -1;
        const auto& x = spec.features[static_cast<std::size_t>(f)];
        if (x.type != type || (type == dmin::FeatureType::categorical && (x.role == dmin::Role::candidate) != candidate)) return -1;
        return f;
    };
    cat.item_f = feature("item_feature", dmin::FeatureType::categorical, true);
    cat.cate_f = feature("category_feature", dmin::FeatureType::categorical, true);
    cat.item_hist_f = feature("item_history", dmin::FeatureType::sequence, false);
    cat.cate_hist_f = feature("category_history", dmin::FeatureType::sequence, false);
    cat.item_category = doc.at("item_category").get<std::vector<std::int64_t>>();
    cat.category_names = doc.at("category_names").get<std::vector<std::string>>();
    if (cat.item_f < 0 || cat.cate_f < 0 || cat.item_hist_f < 0 || cat.cate_hist_f < 0) {
        std::printf("note: catalog %s does not match this model's features; using random ids\n", path.c_str());
        return false;
    }
    const auto& items = spec.features[static_cast<std::size_t>(cat.item_f)];
    const auto& cates = spec.features[static_cast<std::size_t>(cat.cate_f)];
    if (cat.item_category.size() > static_cast<std::size_t>(items.vocab_size)) {
        std::printf("note: catalog %s has more items than the model's vocabulary; using random ids\n", path.c_str());
        return false;
    }
    for (std::size_t i = 1; i < cat.item_category.size(); ++i) {
        const auto c = cat.item_category[i];
        if (c <= 0 || c >= cates.vocab_size) {
            std::printf("note: catalog %s: item %zu has category %lld outside the model's vocabulary; using random ids\n",
                        path.c_str(), i, static_cast<long long>(c));
            return false;
        }
        if (static_cast<std::size_t>(c) >= cat.items_of.size()) cat.items_of.resize(static_cast<std::size_t>(c) + 1);
        cat.items_of[static_cast<std::size_t>(c)].push_back(static_cast<std::int64_t>(i));
    }
    return true;
}

/// Reads and checks a catalog file; throws on unreadable or malformed JSON.
bool load_catalog(const std::string& path, const dmin::Model<>& model, Catalog& cat) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("catalog " + path + ": cannot open");
    std::stringstream text;
    text << in.rdbuf();
    try {
        return parse_catalog(dmin::io::parse_strict(text.str(), path), model, cat, path);
    } catch (const dmin::io::json::exception& e) {  // missing key, wrong type
        throw std::runtime_error("catalog " + path + ": " + e.what());
    }
}

template <class F>
double median_us(int reps, F&& f) {
    std::vector<double> t(static_cast<std::size_t>(reps));
    for (auto& x : t) {
        const auto t0 = std::chrono::steady_clock::now();
        f();
        x = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
    }
    std::nth_element(t.begin(), t.begin() + reps / 2, t.end());
    return t[static_cast<std::size_t>(reps / 2)];
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: rank_candidates MODEL.safetensors [--candidates N] [--seed S] [--catalog FILE | --no-catalog]\n");
        return 2;
    }
    try {
        const std::string model_path = argv[1];
        std::size_t n = 500;
        unsigned seed = 7;
        std::string catalog_path;
        bool use_catalog = true;
        for (int i = 2; i < argc; ++i) {
            const std::string k = argv[i];
            const bool has_value = i + 1 < argc;
            if (k == "--candidates" && has_value) n = example::parse_count(k, argv[++i]);
            else if (k == "--seed" && has_value) seed = static_cast<unsigned>(example::parse_count(k, argv[++i]));
            else if (k == "--catalog" && has_value) catalog_path = argv[++i];
            else if (k == "--no-catalog") use_catalog = false;
            else {
                std::fprintf(stderr, "rank_candidates: unknown or incomplete option %s\n", k.c_str());
                return 2;
            }
        }
        if (n == 0) {
            std::fprintf(stderr, "rank_candidates: --candidates must be >= 1\n");
            return 2;
        }
        if (use_catalog && catalog_path.empty()) {  // MODEL.safetensors -> MODEL.catalog.json, if present
            const std::string ext = ".safetensors";
            std::string stem = model_path;
            if (stem.size() > ext.size() && stem.compare(stem.size() - ext.size(), ext.size(), ext) == 0) stem.resize(stem.size() - ext.size());
            if (file_exists(stem + ".catalog.json")) catalog_path = stem + ".catalog.json";
        }
        const dmin::Model<> model = dmin::load(model_path, dmin::LoadOptions{/*self_test=*/true});
        const auto& spec = model.spec();
        std::mt19937 rng(seed);
        Catalog cat;
        const bool world = use_catalog && !catalog_path.empty() && load_catalog(catalog_path, model, cat);

        // ---- the request: profile and context features random, behaviour sequence(s) ----
        dmin::Sample user = example::random_user(model, rng, 0.75);
        std::vector<std::int64_t> hist_cats;  // categories of the history (catalog mode)
        if (world) {
            // A user with three interests of different strength: 15 recent events interleaving them.
            std::vector<std::int64_t> pool;
            for (std::size_t c = 1; c < cat.items_of.size(); ++c)
                if (cat.items_of[c].size() >= 3) pool.push_back(static_cast<std::int64_t>(c));
            std::shuffle(pool.begin(), pool.end(), rng);
            const std::size_t k = std::min<std::size_t>(3, pool.size());
            hist_cats.assign(pool.begin(), pool.begin() + static_cast<std::ptrdiff_t>(k));
            const int L = spec.features[static_cast<std::size_t>(cat.item_hist_f)].max_len;
            std::discrete_distribution<std::size_t> pick({0.5, 0.3, 0.2});
            std::vector<std::int64_t> items, cates;
            for (int l = 0; l < L * 3 / 4 && k > 0; ++l) {
                const auto c = hist_cats[std::min(pick(rng), k - 1)];
                const auto& its = cat.items_of[static_cast<std::size_t>(c)];
                items.push_back(its[std::uniform_int_distribution<std::size_t>(0, its.size() - 1)(rng)]);
                cates.push_back(c);
            }
            user.set(spec.features[static_cast<std::size_t>(cat.item_hist_f)].name, items);
            user.set(spec.features[static_cast<std::size_t>(cat.cate_hist_f)].name, cates);
        }
        std::printf("model: %s (%zu parameters)\nrequest:\n", model_path.c_str(), model.parameter_count());
        for (std::size_t f = 0; f < spec.features.size(); ++f) {
            const auto& x = spec.features[f];
            const auto& sl = model.slot(static_cast<int>(f));
            if (x.role == dmin::Role::candidate) continue;
            if (x.type == dmin::FeatureType::numeric) {
                std::printf("  %-12s %-8s %.3f\n", x.name.c_str(), to_string(x.role), static_cast<double>(user.values()[static_cast<std::size_t>(sl.offset)]));
            } else if (x.type == dmin::FeatureType::categorical) {
                std::printf("  %-12s %-8s %lld\n", x.name.c_str(), to_string(x.role), static_cast<long long>(user.ids()[static_cast<std::size_t>(sl.offset)]));
            } else {
                std::string ids;
                int filled = 0;
                for (int l = 0; l < x.max_len; ++l) {
                    const auto id = user.ids()[static_cast<std::size_t>(sl.offset + l)];
                    if (id == 0) continue;
                    ++filled;
                    if (static_cast<int>(f) == cat.cate_hist_f) ids += " " + cat.category(id);
                    else ids += " " + std::to_string(id);
                }
                std::printf("  %-12s %-8s %d of %d positions (most recent first):%s\n", x.name.c_str(), "sequence", filled, x.max_len, ids.c_str());
            }
        }

        // ---- candidates: rows of the candidate-role features ----
        example::CandidateRows rows = example::random_candidates(model, n, rng);
        if (world) {  // distinct catalog items (repeats only if N exceeds the catalog), with their category
            std::vector<std::int64_t> items(cat.item_category.size() - 1);
            std::iota(items.begin(), items.end(), 1);
            std::shuffle(items.begin(), items.end(), rng);
            for (std::size_t c = 0; c < n; ++c) {
                const auto item = items[c % items.size()];
                rows.id(model, c, cat.item_f) = item;
                rows.id(model, c, cat.cate_f) = cat.item_category[static_cast<std::size_t>(item)];
            }
        }
        const dmin::Candidates cands = rows.view();

        // ---- score ----
        dmin::Scorer<dmin::Model<>> scorer(model);
        std::vector<float> p(n);
        const auto t0 = std::chrono::steady_clock::now();
        scorer.set_user(user.view());
        scorer.score(cands, p.data());
        const auto t1 = std::chrono::steady_clock::now();

        // ---- top 10, explained ----
        const std::size_t top = std::min<std::size_t>(10, n);
        std::vector<std::size_t> order(n);
        std::iota(order.begin(), order.end(), 0);
        std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(top), order.end(),
                          [&](std::size_t a, std::size_t b) { return p[a] > p[b]; });
        std::printf("top %zu of %zu candidates:\n", top, n);
        std::printf("  rank  %-22s  p(click)  driven by (logit contribution)  attends most to\n", world ? "item (category)" : "candidate ids");
        std::size_t in_history_cats = 0;
        for (std::size_t r = 0; r < top; ++r) {
            const std::size_t c = order[r];
            const auto e = scorer.explain(cands, c);
            const auto& h = e.heads[e.top_head()];
            const auto l = static_cast<int>(std::max_element(h.weights.begin(), h.weights.end()) - h.weights.begin());
            const int seq0 = spec.branches[static_cast<std::size_t>(h.branch)].sequence[0];
            const auto hist_id = user.ids()[static_cast<std::size_t>(model.slot(seq0).offset + l)];
            std::string what, attended = "position " + std::to_string(l) + ": ";
            if (hist_id == 0) attended += "padding (empty history: uniform weights)";
            if (world) {
                const auto cate = rows.id(model, c, cat.cate_f);
                what = std::to_string(rows.id(model, c, cat.item_f)) + " (" + cat.category(cate) + ")";
                if (hist_id != 0 && static_cast<std::size_t>(hist_id) < cat.item_category.size())
                    attended += std::to_string(hist_id) + " (" + cat.category(cat.item_category[static_cast<std::size_t>(hist_id)]) + ")";
                in_history_cats += std::count(hist_cats.begin(), hist_cats.end(), cate) > 0;
            } else {
                for (std::size_t k = 0; k < rows.id_stride; ++k) what += (k ? "," : "") + std::to_string(rows.ids[c * rows.id_stride + k]);
                if (hist_id != 0) attended += "id " + std::to_string(hist_id);
            }
            std::printf("  %4zu  %-22s  %.6f  branch %d head %d (%+.3f)        %s (weight %.2f)\n", r + 1, what.c_str(),
                        static_cast<double>(p[c]), h.branch, h.head, static_cast<double>(h.contribution), attended.c_str(),
                        static_cast<double>(h.weights[static_cast<std::size_t>(l)]));
        }
        if (world) {
            std::size_t share = 0;
            for (std::size_t c = 0; c < n; ++c)
                share += std::count(hist_cats.begin(), hist_cats.end(), rows.id(model, c, cat.cate_f)) > 0;
            std::printf("%zu of the top %zu are in the history's categories (%zu of all %zu candidates are)\n", in_history_cats, top,
                        share, n);
        }

        const double first = std::chrono::duration<double, std::micro>(t1 - t0).count();
        const double user_us = median_us(21, [&] { scorer.set_user(user.view()); });
        const double all_us = median_us(21, [&] {
            scorer.set_user(user.view());
            scorer.score(cands, p.data());
        });
        std::printf("request latency: %.1f us for %zu candidates, first call; warm median %.1f us "
                    "(user phase %.1f us, %.3f us per candidate)\n",
                    first, n, all_us, user_us, (all_us - user_us) / static_cast<double>(n));
        return 0;
    } catch (const dmin::Error& e) {
        std::fprintf(stderr, "rank_candidates: %s\n", e.what());
        return 2;
    } catch (const std::exception& e) {  // e.g. a malformed catalog (nlohmann::json errors)
        std::fprintf(stderr, "rank_candidates: %s\n", e.what());
        return 2;
    }
}
