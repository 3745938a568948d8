// `dmin bench`: random valid requests for any model file, timed; prints one JSON object.
#pragma once

#include <dmin/dmin.hpp>

#include "../examples/random_request.hpp"
#include "cli_model.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <random>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace dmin_cli {

inline double percentile(std::vector<double> v, double q) {
    std::sort(v.begin(), v.end());
    const auto i = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
    return v[std::min(i, v.size() - 1)];
}

/// The whole of option k's value v as a number: "4junk", or "2.5" for an integer option, is an error
/// (std::stol alone would read 4 and 2).
template <class T>
T option_value(const std::string& k, const std::string& v) {
    std::size_t used = 0;
    T x{};
    try {
        if constexpr (std::is_integral_v<T>) x = static_cast<T>(std::stol(v, &used));
        else x = static_cast<T>(std::stod(v, &used));
    } catch (const std::logic_error&) {
        used = 0;
    }
    if (used == 0 || used != v.size()) throw dmin::Error("bench: bad value for " + k + ": '" + v + "'");
    return x;
}

inline int bench(const std::vector<std::string>& args) {
    std::string path = args.size() > 1 ? args[1] : "";
    long n = -1, threads = 1;
    double seconds = 2.0, fill = 1.0;
    dmin::LoadOptions options;
    for (std::size_t i = 2; i + 1 < args.size(); i += 2) {
        const auto& k = args[i];
        const auto& v = args[i + 1];
        if (k == "--candidates") n = option_value<long>(k, v);
        else if (k == "--threads") threads = option_value<long>(k, v);
        else if (k == "--seconds") seconds = option_value<double>(k, v);
        else if (k == "--fill") fill = option_value<double>(k, v);
        else if (k == "--precision") dmin::set_precision(options, v);
        else if (k == "--tables") dmin::set_tables(options, v);
        else throw dmin::Error("bench: unknown option " + k);
    }
    if ((args.size() - 2) % 2 != 0) throw dmin::Error("bench: options come in pairs (--name value)");
    if (n < 1 || n > 10000000) throw dmin::Error("bench: --candidates N (1 .. 10^7) is required");
    if (threads < 1 || threads > 256) throw dmin::Error("bench: --threads must be in 1 .. 256");
    if (!(fill >= 0 && fill <= 1)) throw dmin::Error("bench: --fill must be in [0, 1]");
    if (!(seconds > 0 && seconds < 3600)) throw dmin::Error("bench: --seconds must be in (0, 3600)");
    const auto model = dmin_cli::load(path, options);
    const auto req = example::random_request(model, static_cast<std::size_t>(n), fill, 42);
    const auto T = static_cast<std::size_t>(threads);
    std::vector<Scorer> scorers;
    for (std::size_t t = 0; t < T; ++t) scorers.emplace_back(model);
    std::vector<float> out(static_cast<std::size_t>(n));
    const auto N = static_cast<std::size_t>(n);
    auto run_part = [&](std::size_t t) {
        const std::size_t from = N * t / T, to = N * (t + 1) / T;
        scorers[t].set_user(req.user.view());
        if (to > from) scorers[t].score(req.candidates.slice(from, to - from), out.data() + from);
    };
    // Persistent workers (threads 1..T-1) woken per request; the calling thread does part 0. Both
    // sides spin for up to kSpin before sleeping on a condition variable, as serving thread pools do:
    // a futex wake-up costs tens of µs in a VM (10% of a 650 µs small-shape request at 2 threads).
    constexpr auto kSpin = std::chrono::microseconds(100);
    auto spin_until = [&](auto ready) {
        const auto until = std::chrono::steady_clock::now() + kSpin;
        while (!ready())
            if (std::chrono::steady_clock::now() > until) return false;
        return true;
    };
    std::mutex mu;
    std::condition_variable wake, done;
    std::atomic<std::size_t> generation{0}, finished{0};
    std::atomic<bool> stop{false};
    std::vector<std::thread> pool;
    for (std::size_t t = 1; t < T; ++t)
        pool.emplace_back([&, t] {
            std::size_t seen = 0;
            for (;;) {
                auto woken = [&] { return stop.load() || generation.load() != seen; };
                if (!spin_until(woken)) {
                    std::unique_lock<std::mutex> lock(mu);
                    wake.wait(lock, woken);
                }
                if (stop.load()) return;
                seen = generation.load();
                run_part(t);
                if (finished.fetch_add(1) + 1 == T - 1) {
                    std::lock_guard<std::mutex> lock(mu);  // orders the notify after the waiter's check
                    done.notify_one();
                }
            }
        });
    auto one_request = [&] {
        if (T > 1) {
            finished.store(0);
            {
                std::lock_guard<std::mutex> lock(mu);
                generation.fetch_add(1);
            }
            wake.notify_all();
        }
        run_part(0);
        if (T > 1) {
            auto all_done = [&] { return finished.load() == T - 1; };
            if (!spin_until(all_done)) {
                std::unique_lock<std::mutex> lock(mu);
                done.wait(lock, all_done);
            }
        }
    };
    struct Joiner {
        std::mutex& mu;
        std::condition_variable& wake;
        std::atomic<bool>& stop;
        std::vector<std::thread>& pool;
        ~Joiner() {
            {
                std::lock_guard<std::mutex> lock(mu);
                stop.store(true);
            }
            wake.notify_all();
            for (auto& th : pool) th.join();
        }
    } joiner{mu, wake, stop, pool};
    using clock = std::chrono::steady_clock;
    for (int w = 0; w < 3; ++w) one_request();
    std::vector<double> us;
    const auto start = clock::now();
    while (std::chrono::duration<double>(clock::now() - start).count() < seconds || us.size() < 5) {
        const auto t0 = clock::now();
        one_request();
        us.push_back(std::chrono::duration<double, std::micro>(clock::now() - t0).count());
    }
    const double med = percentile(us, 0.5), p99 = percentile(us, 0.99);
    // The spread: on a shared or virtualised host a long request may absorb an interruption, and a
    // median near the boundary between the two modes says more about the host than about the model.
    const double lo = percentile(us, 0.0), p10 = percentile(us, 0.1), p25 = percentile(us, 0.25), p75 = percentile(us, 0.75),
                 p90 = percentile(us, 0.9);
    const int valid = static_cast<int>(fill * model.spec().branches[0].L + 0.5);
    const auto fl = dmin_cli::count_flops(model, valid);
    const double total = fl.user * static_cast<double>(T) + fl.per_candidate * static_cast<double>(n);
    std::printf("{\"candidates\": %ld, \"threads\": %ld, \"request_us\": {\"median\": %.3f, \"p99\": %.3f, \"min\": %.3f, "
                "\"p10\": %.3f, \"p25\": %.3f, \"p75\": %.3f, \"p90\": %.3f}, "
                "\"per_candidate_us\": {\"median\": %.4f, \"p99\": %.4f}, \"candidates_per_s\": %.1f, \"gflops\": %.3f, "
                "\"requests_timed\": %zu, \"isa\": \"%s\", \"precision\": \"%s\", \"tables\": \"%s\"}\n",
                n, threads, med, p99, lo, p10, p25, p75, p90, med / static_cast<double>(n), p99 / static_cast<double>(n),
                static_cast<double>(n) / (med * 1e-6), total / (med * 1e3), us.size(), dmin_cli::isa(model).c_str(),
                dmin::precision_name(options), options.bf16_tables ? "bf16" : "float32");
    return 0;
}

}  // namespace dmin_cli
