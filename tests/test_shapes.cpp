// Every test fixture scored through its compile-time shape type (the one `dmin inspect` prints) against the
// runtime-sized model. The fast path is bit for bit the same: both instantiations run the same kernels in
// the same order, the fixed sizes only turn loop bounds into constants. The reference path is held to
// 1e-6: it is written as Eigen expressions, and Eigen orders the terms of a product of compile-time-sized
// views differently (unrolled, other partial sums) from the same product of Dynamic ones. Its sums are
// taken in double (nn::linear_reference), so the two orders rarely round to different floats.
#include "catch.hpp"

#include <cstring>
#include <iomanip>
#include <random>

#include "../examples/random_request.hpp"
#include "test_util.hpp"

namespace {

/// Scores random requests (every fill level, group sizes of one candidate, a partial and a whole lane
/// group, and several DNN blocks) with Model<Shape> and Model<>: the fast paths' bits equal, the reference
/// paths within 1e-6.
template <class Shape>
void same_as_runtime(const std::string& path, const char* type_text) {
    INFO(path);
    const auto dyn = dmin::load(path);
    REQUIRE(dmin::shape_type_for(dyn.spec()) == type_text);
    const auto fixed = dmin::load<dmin::Model<Shape>>(path);  // the self-test replays the stored pair through it
    dmin::Scorer<dmin::Model<>> sd(dyn);
    dmin::Scorer<dmin::Model<Shape>> sf(fixed);
    std::mt19937 rng(7);
    std::size_t compared = 0, differ = 0;
    for (double fill : {0.0, 0.4, 1.0}) {
        const auto user = example::random_user(dyn, rng, fill);
        sd.set_user(user.view());
        sf.set_user(user.view());
        for (std::size_t n : {1u, 5u, 12u, 16u, 70u}) {
            const auto rows = example::random_candidates(dyn, n, rng);
            std::vector<float> pd(n), pf(n), rd(n), rf(n);
            sd.score(rows.view(), pd.data());
            sf.score(rows.view(), pf.data());
            sd.score_reference(rows.view(), rd.data());
            sf.score_reference(rows.view(), rf.data());
            for (std::size_t c = 0; c < n; ++c) {
                differ += std::memcmp(&pd[c], &pf[c], sizeof(float)) != 0;
                INFO(std::setprecision(9) << "reference " << rd[c] << " fixed " << rf[c] << " fast " << pd[c]);
                CHECK(std::fabs(rd[c] - rf[c]) <= 1e-6f);
            }
            compared += n;
        }
    }
    CHECK(compared == 3 * (1 + 5 + 12 + 16 + 70));
    CHECK(differ == 0);
    if constexpr (dmin::BranchState<Shape>::owns_scratch) {  // the compiler's measure of the branch scratch is the runtime one
        for (const auto& b : fixed.branches()) {
            dmin::Arena measure;
            dmin::BranchBuffers<Shape> buffers{};
            buffers.carve(measure, b, dmin::scratch_detail::attention_widest(b));
            CHECK(measure.used() == dmin::BranchState<Shape>::kFloats);
        }
    }
    if constexpr (dmin::DnnState<Shape>::owns_scratch) {  // the DNN's: sized for a candidate part of all X, so at least the runtime one
        dmin::Arena measure;
        dmin::layers::DnnWorkspace ws{};
        ws.carve(measure, fixed.dnn().dims());
        CHECK(measure.used() <= dmin::DnnState<Shape>::kFloats);
    }
    // A fully fixed shape carves nothing at run time; any Dynamic size leaves that part in the arena.
    constexpr bool all_fixed = dmin::BranchState<Shape>::owns_scratch && dmin::DnnState<Shape>::owns_scratch;
    CHECK((sf.arena_floats() == 0) == all_fixed);
}

}  // namespace

// The type text is the line `dmin inspect` prints for the fixture; the macro keeps type and text one.
#define DMIN_SHAPE_CASE(dir, name, ...) \
    same_as_runtime<__VA_ARGS__>(dmin_test::work_dir() + "/" + (dir) + "/" + (name) + ".safetensors", #__VA_ARGS__)

TEST_CASE("compile-time shapes: every FuxiCTR case scores as the runtime-sized model (fast path bit for bit, reference within 1e-6)", "[shapes][fuxictr]") {
    DMIN_SHAPE_CASE("fuxictr", "tiny_seq_trained", dmin::Shape<8, 5, 2, 8, dmin::Units<80, 40>, dmin::Units<64, 32>, 128>);
    DMIN_SHAPE_CASE("fuxictr", "heads2_dice_bn", dmin::Shape<8, 5, 2, 8, dmin::Units<80, 40>, dmin::Units<64, 32>, 128>);
    DMIN_SHAPE_CASE("fuxictr", "heads4_prelu", dmin::Shape<12, 5, 4, 8, dmin::Units<64, 32, 16>, dmin::Units<48, 24>, 216>);
    DMIN_SHAPE_CASE("fuxictr", "sum_pooling", dmin::Shape<8, 5, 2, 4, dmin::Units<80, 40>, dmin::Units<64, 32>, 144>);
}

TEST_CASE("compile-time shapes: every random reference model scores as the runtime-sized model (fast path bit for bit, reference within 1e-6)", "[shapes][random]") {
    // No SECTIONs: Catch2 re-enters the test case once per section, and everything outside them would
    // run again each time.
    for (const char* sweep : {"act_sweep_1", "act_sweep_2", "act_sweep_3", "act_sweep_4"})
        DMIN_SHAPE_CASE("random", sweep, dmin::Shape<8, 5, 2, 4, dmin::Units<12, 10, 8>, dmin::Units<24, 20, 16, 12>, 40>);
    DMIN_SHAPE_CASE("random", "heads1", dmin::Shape<8, 6, 1, 4, dmin::Units<16, 8>, dmin::Units<24>, 32>);
    DMIN_SHAPE_CASE("random", "plain_no_refiner", dmin::Shape<8, 6, 2, 0, dmin::Units<16, 8>, dmin::Units<32, 16>, 40>);
    DMIN_SHAPE_CASE("random", "two_branches",
                    dmin::Shape<dmin::Dynamic, dmin::Dynamic, 2, 4, dmin::Units<16, 8>, dmin::Units<32, 16>, 80>);
#ifndef DMIN_TEST_SANITIZED
    // Each shape type instantiates the whole model once more; under the sanitizers (-O1, instrumented)
    // that is minutes of compiling per type. The sanitizer build keeps the types above, which cover a
    // fixed everything, a partly Dynamic shape, one head and no refiner; the rest differ only in sizes.
    DMIN_SHAPE_CASE("random", "tiny_seq_e8_h2_l5", dmin::Shape<8, 5, 2, 8, dmin::Units<80, 40>, dmin::Units<64, 32>, 64>);
    DMIN_SHAPE_CASE("random", "bn_only_once", dmin::Shape<8, 8, 2, 4, dmin::Units<16, 8>, dmin::Units<136, 72>, 40>);
    DMIN_SHAPE_CASE("random", "context_target", dmin::Shape<16, 5, 2, 4, dmin::Units<16, 8>, dmin::Units<32, 16>, 56>);
    DMIN_SHAPE_CASE("random", "gelu_regression", dmin::Shape<8, 5, 2, 3, dmin::Units<16, 8>, dmin::Units<32, 16>, 40>);
    DMIN_SHAPE_CASE("random", "h8_d128_l20", dmin::Shape<128, 20, 8, 8, dmin::Units<64, 32>, dmin::Units<128, 64>, 1216>);
    DMIN_SHAPE_CASE("random", "l100_d32_h4", dmin::Shape<32, 100, 4, 8, dmin::Units<32, 16>, dmin::Units<64, 32>, 224>);
    DMIN_SHAPE_CASE("random", "numeric_context", dmin::Shape<8, 7, 2, 4, dmin::Units<16, 8>, dmin::Units<32, 16>, 58>);
    DMIN_SHAPE_CASE("random", "strict_mask", dmin::Shape<8, 8, 2, 4, dmin::Units<16, 8>, dmin::Units<32, 16>, 40>);
    DMIN_SHAPE_CASE("random", "sum_pooling", dmin::Shape<16, 6, 4, 4, dmin::Units<16, 8>, dmin::Units<32, 16>, 120>);
    DMIN_SHAPE_CASE("random", "tuple_bn_dice_dropout", dmin::Shape<32, 10, 4, 8, dmin::Units<32, 16>, dmin::Units<64, 32>, 176>);
#endif
}

TEST_CASE("compile-time shapes: a shape type lists every size it fixes", "[shapes]") {
    using Net = dmin::Shape<32, 50, 4, 8, dmin::Units<80, 40>, dmin::Units<512, 128, 64>, 256>;
    STATIC_REQUIRE(Net::X == 256);
    STATIC_REQUIRE(dmin::Shape<32, 50, 4, 8, dmin::Units<80, 40>, dmin::Units<512, 128, 64>>::X == dmin::Dynamic);
    STATIC_REQUIRE(Net::dnn_units::widest(256) == 512);
    STATIC_REQUIRE(Net::hd == 8);
    STATIC_REQUIRE(Net::FFN == 64);
    STATIC_REQUIRE(Net::A1 == 80);
    STATIC_REQUIRE(Net::dnn_units::count == 3);
    STATIC_REQUIRE(dmin::dynamic_shape::A1 == dmin::Dynamic);
    STATIC_REQUIRE(dmin::Shape<8, 5, 2, 0, dmin::Units<>, dmin::Units<>>::A1 == dmin::Dynamic);
}

TEST_CASE("compile-time shapes: a state's scratch is a fixed-size member exactly when the shape fixes all its sizes", "[shapes]") {
    using Paper = dmin::Shape<32, 50, 4, 8, dmin::Units<80, 40>, dmin::Units<512, 128, 64>, 256>;
    STATIC_REQUIRE(dmin::BranchState<Paper>::owns_scratch);
    STATIC_REQUIRE(sizeof(dmin::BranchState<Paper>) >= dmin::BranchState<Paper>::kFloats * sizeof(float));
    STATIC_REQUIRE(alignof(dmin::BranchState<Paper>) == dmin::kAlign);
    STATIC_REQUIRE(!dmin::BranchState<dmin::dynamic_shape>::owns_scratch);
    STATIC_REQUIRE(!dmin::BranchState<dmin::Shape<dmin::Dynamic, 50, 4, 8, dmin::Units<80, 40>, dmin::Units<64>>>::owns_scratch);
    STATIC_REQUIRE(!dmin::BranchState<dmin::Shape<32, 50, 4, 8, dmin::DynamicUnits, dmin::Units<64>>>::owns_scratch);
    STATIC_REQUIRE(!dmin::BranchState<dmin::Shape<32, 50, 4, 8, dmin::Units<>, dmin::Units<64>>>::owns_scratch);
    // The DNN's needs X and its widths; a 32-candidate block's two layer-output buffers at 512 wide are 64 KiB each.
    STATIC_REQUIRE(dmin::DnnState<Paper>::owns_scratch);
    STATIC_REQUIRE(dmin::DnnState<Paper>::kFloats >= 2 * 32 * 512);
    STATIC_REQUIRE(dmin::DnnState<dmin::Shape<8, 5, 2, 0, dmin::Units<>, dmin::Units<>, 40>>::owns_scratch);  // the head alone
    STATIC_REQUIRE(!dmin::DnnState<dmin::dynamic_shape>::owns_scratch);
    STATIC_REQUIRE(!dmin::DnnState<dmin::Shape<32, 50, 4, 8, dmin::Units<80, 40>, dmin::Units<512, 128, 64>>>::owns_scratch);
    STATIC_REQUIRE(!dmin::DnnState<dmin::Shape<32, 50, 4, 8, dmin::Units<80, 40>, dmin::DynamicUnits, 256>>::owns_scratch);
    // The Scorer itself stays small: the fixed scratch lives in its states, on the heap.
    STATIC_REQUIRE(sizeof(dmin::Scorer<dmin::Model<Paper>>) < 1024);
}

#ifndef DMIN_TEST_SANITIZED  // one more instantiation of the whole model (see above)
TEST_CASE("compile-time shapes: a shape without X names the same model, its DNN's scratch sized at run time", "[shapes][fuxictr]") {
    using Full = dmin::Shape<8, 5, 2, 8, dmin::Units<80, 40>, dmin::Units<64, 32>, 128>;
    using NoX = dmin::Shape<8, 5, 2, 8, dmin::Units<80, 40>, dmin::Units<64, 32>>;
    const std::string path = dmin_test::work_dir() + "/fuxictr/tiny_seq_trained.safetensors";
    const auto full = dmin::load<dmin::Model<Full>>(path);
    const auto nox = dmin::load<dmin::Model<NoX>>(path);
    dmin::Scorer<dmin::Model<Full>> sf(full);
    dmin::Scorer<dmin::Model<NoX>> sn(nox);
    CHECK(sf.arena_floats() == 0);
    CHECK(sn.arena_floats() > 0);
    std::mt19937 rng(11);
    const auto user = example::random_user(full, rng, 0.6);
    const auto rows = example::random_candidates(full, 40, rng);
    sf.set_user(user.view());
    sn.set_user(user.view());
    std::vector<float> pf(40), pn(40);
    sf.score(rows.view(), pf.data());
    sn.score(rows.view(), pn.data());
    CHECK(std::memcmp(pf.data(), pn.data(), pf.size() * sizeof(float)) == 0);
}
#endif
