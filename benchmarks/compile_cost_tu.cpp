// The minimal service translation unit whose compile cost benchmarks/compile_cost.sh measures: load a
// model, build a Sample and a CandidateBatch, set_user and score.
#include <dmin/dmin.hpp>

#include <vector>

int main(int argc, char** argv) {
    if (argc != 2) return 2;
    const dmin::Model<> model = dmin::load(argv[1]);
    dmin::Scorer<dmin::Model<>> scorer(model);
    dmin::Sample user(model);
    scorer.set_user(user.view());
    dmin::CandidateBatch cands(model, 2);
    std::vector<float> p(cands.size());
    scorer.score(cands.view(), p.data());
    return p[0] > 0.5f ? 1 : 0;
}
