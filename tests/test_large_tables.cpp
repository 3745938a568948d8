// Large embedding tables (CTest "reliability.large_tables"; its own executable so that its peak RSS is
// its own). From a small valid weights file it writes a model whose largest candidate table has
// --table-mib MiB (the spec's vocab_size and the tensor enlarged, new rows appended, later tensors
// shifted, header rewritten), flushes it to disk and drops it from the page cache (so the load reads
// from disk), then in a forked child: dmin::load with default options (tables larger
// than 256 MiB are memory-mapped in place), the stored reference pair replayed (its ids are the original
// rows), and a request scored whose candidates include the last rows of the new table. Checks: the
// table is mapped, predictions match the small model bit for bit on the original rows and are valid
// probabilities on the new ones, and the child's peak RSS (getrusage ru_maxrss) stays below 1.2 × the
// file size. The file is removed afterwards. Exit 77 (a CTest SKIP) with < 5 GB free disk.
#include <dmin/dmin.hpp>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

using dmin::io::json;

constexpr int kSkip = 77;

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot open " + path);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

struct Plan {
    std::string table;          ///< tensor name of the enlarged table
    std::int64_t old_vocab = 0, new_vocab = 0;
    int dim = 0;
    std::uint64_t file_bytes = 0;
};

/// Writes the enlarged model to `out`. The new rows are small deterministic finite values.
Plan write_large_model(const std::string& small_path, const std::string& out, std::uint64_t table_bytes) {
    const std::string bytes = slurp(small_path);
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[static_cast<std::size_t>(i)]);
    json header = json::parse(bytes.substr(8, n));
    const std::string data = bytes.substr(8 + n);
    json spec = json::parse(header["__metadata__"]["spec"].get<std::string>());

    // The item table: the candidate-role categorical feature with the largest vocabulary.
    Plan plan;
    for (const auto& f : spec["features"])
        if (f["type"] == "categorical" && f.value("role", "user") == "candidate" && f["vocab_size"].get<std::int64_t>() > plan.old_vocab) {
            plan.old_vocab = f["vocab_size"].get<std::int64_t>();
            plan.dim = f["dim"].get<int>();
            plan.table = f.value("table", "embedding_layer.embedding_layers." + f["name"].get<std::string>() + ".weight");
        }
    if (plan.table.empty()) throw std::runtime_error("no candidate categorical feature in " + small_path);
    const std::uint64_t row = 4u * static_cast<std::uint64_t>(plan.dim);
    plan.new_vocab = static_cast<std::int64_t>(table_bytes / row);
    for (auto& f : spec["features"])  // the owner and every feature sharing the table
        if (f.value("table", "embedding_layer.embedding_layers." + f["name"].get<std::string>() + ".weight") == plan.table)
            f["vocab_size"] = plan.new_vocab;
    header["__metadata__"]["spec"] = spec.dump();

    // Tensors in data order; everything after the table shifts by the added bytes.
    struct T { std::string name; std::uint64_t b, e; };
    std::vector<T> order;
    for (auto it = header.begin(); it != header.end(); ++it)
        if (it.key() != "__metadata__") order.push_back({it.key(), it.value()["data_offsets"][0], it.value()["data_offsets"][1]});
    std::sort(order.begin(), order.end(), [](const T& a, const T& b) { return a.b < b.b; });
    const std::uint64_t added = static_cast<std::uint64_t>(plan.new_vocab - plan.old_vocab) * row;
    std::uint64_t table_end = 0;
    for (const auto& t : order) {
        auto& e = header[t.name];
        if (t.name == plan.table) {
            e["shape"] = {plan.new_vocab, plan.dim};
            e["data_offsets"] = {t.b, t.e + added};
            table_end = t.e;
        } else if (t.b >= table_end && table_end > 0) {
            e["data_offsets"] = {t.b + added, t.e + added};
        }
    }
    std::string h = header.dump();
    while ((8 + h.size()) % 64 != 0) h += ' ';

    std::ofstream o(out, std::ios::binary | std::ios::trunc);
    if (!o) throw std::runtime_error("cannot write " + out);
    char len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<char>((h.size() >> (8 * i)) & 0xff);
    o.write(len, 8);
    o.write(h.data(), static_cast<std::streamsize>(h.size()));
    o.write(data.data(), static_cast<std::streamsize>(table_end));  // up to and including the original table
    std::vector<float> chunk(1 << 21);
    std::uint32_t state = 12345u;
    for (std::uint64_t left = added / 4; left > 0;) {
        const std::size_t k = static_cast<std::size_t>(std::min<std::uint64_t>(left, chunk.size()));
        for (std::size_t i = 0; i < k; ++i) {
            state = state * 1664525u + 1013904223u;
            chunk[i] = (static_cast<float>(state >> 8) / 16777216.0f - 0.5f) * 0.2f;  // [-0.1, 0.1)
        }
        o.write(reinterpret_cast<const char*>(chunk.data()), static_cast<std::streamsize>(k * 4));
        left -= k;
    }
    o.write(data.data() + table_end, static_cast<std::streamsize>(data.size() - table_end));
    o.close();
    if (!o) throw std::runtime_error("writing " + out + " failed (disk full?)");
    plan.file_bytes = 8 + h.size() + data.size() + added;
    return plan;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

/// The child: load, self-test, score; prints its findings; returns the exit status.
int child(const std::string& small_path, const std::string& path, const Plan& plan) {
    const auto t0 = std::chrono::steady_clock::now();
    const dmin::Model<> big = dmin::load(path);  // default options: tables > 256 MiB mapped in place
    const double load_s = seconds_since(t0);
    int bad = 0;
    auto expect = [&](bool ok, const std::string& what) {
        if (!ok) {
            std::printf("FAIL: %s\n", what.c_str());
            ++bad;
        }
    };
    expect(big.mapped_bytes() >= static_cast<std::size_t>(plan.new_vocab) * 4u * static_cast<std::size_t>(plan.dim),
           "the large table is not memory-mapped (mapped_bytes " + std::to_string(big.mapped_bytes()) + ")");
    const auto t1 = std::chrono::steady_clock::now();
    const double diff = dmin::self_test(big);  // reference pair: original rows, must still match
    const double selftest_s = seconds_since(t1);

    const dmin::Model<> small = dmin::load(small_path);
    const auto& spec = big.spec();
    const auto ref = json::parse(big.reference_json());
    const auto user = dmin::sample_from_json(big, ref["samples"][0]);
    const auto ni = static_cast<std::size_t>(big.num_candidate_ids()), nv = static_cast<std::size_t>(std::max(1, big.num_candidate_values()));
    const int item = [&] {
        for (std::size_t f = 0; f < spec.features.size(); ++f)
            if (spec.features[f].table == plan.table && spec.features[f].role == dmin::Role::candidate) return static_cast<int>(f);
        return -1;
    }();
    const std::size_t off = static_cast<std::size_t>(big.slot(item).cand_offset);
    const std::vector<std::int64_t> pick = {0, 1, plan.old_vocab - 1, plan.old_vocab, plan.new_vocab / 2, plan.new_vocab - 2, plan.new_vocab - 1};
    std::vector<std::int64_t> ids(pick.size() * ni, 0);
    std::vector<float> values(pick.size() * nv, 0.0f);
    for (std::size_t c = 0; c < pick.size(); ++c) ids[c * ni + off] = pick[c];
    const dmin::Candidates cands{pick.size(), ids.data(), ni, values.data(), nv};
    dmin::Scorer<dmin::Model<>> sb(big), ss(small);
    std::vector<float> pb(pick.size()), ps(3);
    const auto t2 = std::chrono::steady_clock::now();
    sb.set_user(user.view());
    sb.score(cands, pb.data());
    const double score_s = seconds_since(t2);
    ss.set_user(user.view());
    ss.score(dmin::Candidates{3, ids.data(), ni, values.data(), nv}, ps.data());  // the original rows only
    for (std::size_t c = 0; c < 3; ++c)
        expect(std::memcmp(&pb[c], &ps[c], 4) == 0, "candidate id " + std::to_string(pick[c]) + ": " + std::to_string(pb[c]) +
                                                        " on the large model, " + std::to_string(ps[c]) + " on the small one");
    for (std::size_t c = 0; c < pick.size(); ++c)
        expect(pb[c] > 0.0f && pb[c] < 1.0f, "candidate id " + std::to_string(pick[c]) + ": p = " + std::to_string(pb[c]));
    bool threw = false;
    try {
        ids[0 * ni + off] = plan.new_vocab;
        sb.score(dmin::Candidates{1, ids.data(), ni, values.data(), nv}, pb.data());
    } catch (const dmin::Error&) {
        threw = true;
    }
    expect(threw, "id == new vocab_size was not rejected");

    struct rusage ru {};
    getrusage(RUSAGE_SELF, &ru);
    std::printf("child: load %.2f s, self-test %.3f s (max |dp| %.2g), score %zu candidates %.4f s, mapped %.1f MiB, "
                "resident weights %.1f KiB, peak RSS %.1f MiB\n",
                load_s, selftest_s, diff, pick.size(), score_s, big.mapped_bytes() / 1048576.0, big.resident_bytes() / 1024.0,
                ru.ru_maxrss / 1024.0);
    std::fflush(stdout);
    return bad == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    std::string model, out;
    std::uint64_t table_mib = 1280;
    double min_free_gb = 5.0;  // --min-free-gb: the SKIP threshold (a huge value exercises the skip path)
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string a = argv[i];
        if (a == "--model") model = argv[i + 1];
        else if (a == "--out") out = argv[i + 1];
        else if (a == "--table-mib") table_mib = std::stoull(argv[i + 1]);
        else if (a == "--min-free-gb") min_free_gb = std::stod(argv[i + 1]);
    }
    if (model.empty() || out.empty()) {
        std::fprintf(stderr, "usage: dmin_large_tables --model SMALL.safetensors --out LARGE.safetensors [--table-mib 1280] [--min-free-gb 5]\n");
        return 2;
    }
    // Free disk space where the file goes.
    std::string dir = out.substr(0, out.find_last_of('/') == std::string::npos ? 0 : out.find_last_of('/'));
    if (dir.empty()) dir = ".";
    ::mkdir(dir.c_str(), 0755);
    struct statvfs vfs {};
    if (::statvfs(dir.c_str(), &vfs) != 0) {
        std::perror("statvfs");
        return 1;
    }
    const double free_bytes = static_cast<double>(vfs.f_bavail) * static_cast<double>(vfs.f_frsize);
    if (free_bytes < min_free_gb * 1e9) {
        std::printf("SKIP: only %.2f GB free in %s; the large-table test needs %.0f GB\n", free_bytes / 1e9, dir.c_str(), min_free_gb);
        return kSkip;
    }
    std::printf("%.1f GB free in %s\n", free_bytes / 1e9, dir.c_str());

    int status = 1;
    try {
        const auto t0 = std::chrono::steady_clock::now();
        const Plan plan = write_large_model(model, out, table_mib << 20);
        std::printf("wrote %s: %.1f MiB, table %s [%" PRId64 ", %d] (was [%" PRId64 ", %d]) in %.1f s\n", out.c_str(),
                    plan.file_bytes / 1048576.0, plan.table.c_str(), plan.new_vocab, plan.dim, plan.old_vocab, plan.dim,
                    seconds_since(t0));
        {  // flush to disk and drop the file from the page cache, so the child's load reads from disk
            const auto t1 = std::chrono::steady_clock::now();
            const int fd = ::open(out.c_str(), O_RDONLY);
            const bool dropped = fd >= 0 && ::fdatasync(fd) == 0 && ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0;
            if (fd >= 0) ::close(fd);
            std::printf("%s in %.1f s\n", dropped ? "synced and dropped from the page cache" : "could not drop the page cache (warm load)",
                        seconds_since(t1));
        }
        std::fflush(stdout);
        const pid_t pid = ::fork();
        if (pid < 0) throw std::runtime_error("fork failed");
        if (pid == 0) {
            int rc = 1;
            try {
                rc = child(model, out, plan);
            } catch (const std::exception& e) {
                std::printf("FAIL: child: %s\n", e.what());
            }
            std::fflush(stdout);
            ::_exit(rc);
        }
        int ws = 0;
        ::waitpid(pid, &ws, 0);
        struct rusage ru {};
        getrusage(RUSAGE_CHILDREN, &ru);
        const double peak = static_cast<double>(ru.ru_maxrss) * 1024.0;
        const double ratio = peak / static_cast<double>(plan.file_bytes);
        std::printf("peak RSS of load + score: %.1f MiB = %.3f x the file size (limit 1.2)\n", peak / 1048576.0, ratio);
        const bool child_ok = WIFEXITED(ws) && WEXITSTATUS(ws) == 0;
        if (!child_ok) std::printf("FAIL: the child exited with status %d\n", WIFEXITED(ws) ? WEXITSTATUS(ws) : -WTERMSIG(ws));
        if (ratio >= 1.2) std::printf("FAIL: peak RSS %.3f x the file size\n", ratio);
        status = child_ok && ratio < 1.2 ? 0 : 1;
    } catch (const std::exception& e) {
        std::printf("FAIL: %s\n", e.what());
    }
    std::remove(out.c_str());
    std::printf("%s\n", status == 0 ? "large tables: OK" : "large tables: FAILED");
    return status;
}
