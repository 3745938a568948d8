// dmin inside a service: one const model shared by a small pool of worker threads, each with its
// own dmin::Scorer, serving concurrent requests.
//   embed_in_service MODEL.safetensors [--threads T] [--requests R] [--candidates N] [--seed S]
//
// The pattern:
//   * load the model once at start-up; it is immutable and every member function is const, so all
//     threads read it without locks;
//   * give every worker thread one Scorer (its scratch memory is sized once in the constructor;
//     set_user/score never allocate), and reuse it for every request that thread handles;
//   * per request: scorer.set_user(user) once, then scorer.score(all candidates) in one call.
// Requests here are random (example::random_user / random_candidates) and pre-built, so the timings
// are dmin's alone; a real service would pull them from its RPC queue instead of a shared counter.
#include <dmin/dmin.hpp>

#include "random_request.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Request {
    dmin::Sample user;
    example::CandidateRows candidates;
};

struct Response {
    std::size_t best = 0;  // index of the highest-probability candidate
    float best_p = 0;
    double latency_us = 0;  // set_user + score
};

double percentile(std::vector<double> v, double q) {
    const auto k = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
    return v[k];
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: embed_in_service MODEL.safetensors [--threads T] [--requests R] [--candidates N] [--seed S]\n");
        return 2;
    }
    try {
        std::size_t threads = 2, requests = 200, candidates = 300;
        unsigned seed = 1;
        for (int i = 2; i + 1 < argc; i += 2) {
            const std::string k = argv[i];
            const auto v = example::parse_count(k, argv[i + 1]);
            if (k == "--threads") threads = v;
            else if (k == "--requests") requests = v;
            else if (k == "--candidates") candidates = v;
            else if (k == "--seed") seed = static_cast<unsigned>(v);
            else {
                std::fprintf(stderr, "embed_in_service: unknown option %s\n", k.c_str());
                return 2;
            }
        }
        if (threads == 0 || requests == 0 || candidates == 0) {
            std::fprintf(stderr, "embed_in_service: --threads, --requests and --candidates must be >= 1\n");
            return 2;
        }
        // 1. Start-up: one model for the whole process.
        const dmin::Model<> model = dmin::load(argv[1]);

        // Pre-built random requests with histories of varying length (some empty).
        std::mt19937 rng(seed);
        std::vector<Request> queue;
        queue.reserve(requests);
        for (std::size_t r = 0; r < requests; ++r) {
            const double fill = std::uniform_real_distribution<double>(-0.1, 1.0)(rng);
            queue.push_back(Request{example::random_user(model, rng, fill), example::random_candidates(model, candidates, rng)});
        }
        std::vector<Response> responses(requests);

        // 2. The pool: each worker owns a Scorer and takes the next request until none is left.
        std::atomic<std::size_t> next{0};
        std::vector<std::exception_ptr> errors(threads);
        auto worker = [&](std::size_t t) {
            try {
                dmin::Scorer<dmin::Model<>> scorer(model);       // per thread, reused for every request
                std::vector<float> p(candidates);                 // per thread output buffer
                for (std::size_t r; (r = next.fetch_add(1)) < requests;) {
                    const auto t0 = std::chrono::steady_clock::now();
                    scorer.set_user(queue[r].user.view());
                    scorer.score(queue[r].candidates.view(), p.data());
                    const auto t1 = std::chrono::steady_clock::now();
                    const auto best = static_cast<std::size_t>(std::max_element(p.begin(), p.end()) - p.begin());
                    responses[r] = Response{best, p[best], std::chrono::duration<double, std::micro>(t1 - t0).count()};
                }
            } catch (...) {
                errors[t] = std::current_exception();  // never let an exception escape a thread
            }
        };
        const auto start = std::chrono::steady_clock::now();
        std::vector<std::thread> pool;
        for (std::size_t t = 0; t < threads; ++t) pool.emplace_back(worker, t);
        for (auto& th : pool) th.join();
        const double wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        for (const auto& e : errors)
            if (e) std::rethrow_exception(e);

        // 3. Sanity: a fresh scorer on this thread reproduces what the pool computed.
        dmin::Scorer<dmin::Model<>> check(model);
        std::vector<float> p(candidates);
        for (std::size_t r : {std::size_t{0}, requests / 2, requests - 1}) {
            check.set_user(queue[r].user.view());
            check.score(queue[r].candidates.view(), p.data());
            if (p[responses[r].best] != responses[r].best_p) {
                std::fprintf(stderr, "embed_in_service: request %zu differs between threads\n", r);
                return 1;
            }
        }

        std::vector<double> lat(requests);
        for (std::size_t r = 0; r < requests; ++r) lat[r] = responses[r].latency_us;
        std::printf("model: %s\n", argv[1]);
        std::printf("%zu requests x %zu candidates on %zu threads (one shared const model, one Scorer per thread)\n", requests,
                    candidates, threads);
        std::printf("throughput: %.0f requests/s, %.0f candidates/s (wall %.3f s)\n", static_cast<double>(requests) / wall_s,
                    static_cast<double>(requests * candidates) / wall_s, wall_s);
        std::printf("latency per request (set_user + score): p50 %.1f us, p99 %.1f us, max %.1f us\n", percentile(lat, 0.5),
                    percentile(lat, 0.99), percentile(lat, 1.0));
        std::printf("request 0: best candidate %zu, p = %.4f\n", responses[0].best, static_cast<double>(responses[0].best_p));
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "embed_in_service: %s\n", e.what());
        return 2;
    }
}
