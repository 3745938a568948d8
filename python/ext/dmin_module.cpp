// _dmin: the C++ scorer as a Python extension (pybind11). The public package is python/dmin, which
// re-exports these classes; this file only turns numpy columns into the library's request layout.
//
// Threading: a Model is immutable and may be shared by any number of Python threads; predict() builds
// its own Scorer per call. A Scorer holds one request's state, so each thread needs its own
// (Model.scorer()); using one from two threads at once raises dmin.Error. Every entry point that scores
// releases the GIL for the C++ part.
#include <dmin/dmin.hpp>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace py = pybind11;

namespace {

using Model = dmin::Model<>;
using Scorer = dmin::Scorer<Model>;
using dmin::detail::fail;

/// Columns converted (dtype or raw tokens) instead of read in place; the tests read it to check that
/// int64 / float32 arrays are not copied.
std::atomic<long> g_conversions{0};

/// Which features a request dict carries: a full sample (predict), the request part of one (set_user:
/// candidate features may be present and are ignored), or candidate rows (score, explain).
enum class Part { sample, user, candidates };

/// One feature's column: a strided view of a numpy array (int64 ids or float32 values), which either
/// is the caller's array or a copy converted once from another dtype or from raw tokens.
struct Column {
    py::array keep;        // holds the viewed array alive
    const char* data = nullptr;
    py::ssize_t rows = 0, row_stride = 0, col_stride = 0, width = 1;  // width: sequence ids per row

    std::int64_t id(py::ssize_t r, py::ssize_t k = 0) const {
        if (k >= width) return 0;  // sequences narrower than max_len are padded
        return *reinterpret_cast<const std::int64_t*>(data + r * row_stride + k * col_stride);
    }
    float value(py::ssize_t r) const { return *reinterpret_cast<const float*>(data + r * row_stride); }
};

std::string shape_of(const py::array& a) {
    std::vector<py::ssize_t> s(a.shape(), a.shape() + a.ndim());
    return dmin::detail::shape_str(s);
}

bool is_text(const py::array& a) {
    const char k = a.dtype().kind();
    return k == 'U' || k == 'S' || k == 'O';
}

/// Index of a raw token (a str, bytes or int element of a numpy array) in vocabulary v.
std::int64_t token_index(const dmin::Vocabulary& v, py::handle t, bool in_sequence) {
    if (py::isinstance<py::int_>(t)) return v.index(t.cast<std::int64_t>());
    if (py::isinstance<py::bytes>(t)) return v.index(t.cast<std::string>(), in_sequence);
    if (py::isinstance<py::str>(t)) return v.index(t.cast<std::string>(), in_sequence);
    fail("expected a raw token (str or int), found ", py::str(py::type::of(t)).cast<std::string>());
}

/// Raw tokens of feature x through its vocabulary into an int64 array [rows] or [rows, max_len]. A
/// sequence is a 2-D array of tokens ("" = padding) or a 1-D object array of token lists.
py::array tokens_to_ids(const dmin::FeatureSpec& x, const dmin::Vocabulary& v, const py::array& a) {
    const bool seq = x.type == dmin::FeatureType::sequence;
    const py::ssize_t rows = a.ndim() ? a.shape(0) : 0, L = seq ? x.max_len : 1;
    py::array_t<std::int64_t> out(seq ? std::vector<py::ssize_t>{rows, L} : std::vector<py::ssize_t>{rows});
    auto* o = out.mutable_data();
    const py::list items = a.attr("tolist")();
    for (py::ssize_t r = 0; r < rows; ++r) {
        const py::handle row = items[static_cast<std::size_t>(r)];
        if (!seq) {
            o[r] = token_index(v, row, false);
            continue;
        }
        const py::list toks = py::list(py::reinterpret_borrow<py::object>(row));
        if (static_cast<py::ssize_t>(toks.size()) > L) fail("sequence of length ", toks.size(), " exceeds max_len ", L);
        for (py::ssize_t k = 0; k < L; ++k)
            o[r * L + k] = k < static_cast<py::ssize_t>(toks.size()) ? token_index(v, toks[static_cast<std::size_t>(k)], true) : v.pad_index();
    }
    return py::array(std::move(out));  // array_t -> array: explicit, so no compiler calls the move redundant
}

/// The array of feature f as int64 ids / float32 values, converting (once) what is not already so.
py::array typed(const Model& m, int f, py::array a) {
    const auto& x = m.spec().features[static_cast<std::size_t>(f)];
    const char k = a.dtype().kind();
    if (x.type == dmin::FeatureType::numeric) {
        if (k != 'f' && k != 'i' && k != 'u') fail("expected float32 values, found a ", py::str(a.dtype()).cast<std::string>(), " array");
        if (a.dtype().is(py::dtype::of<float>())) return a;
        ++g_conversions;
        return py::array_t<float, py::array::forcecast>(a);
    }
    if (is_text(a)) {
        const auto* v = m.vocabularies().of(f);
        if (!v) fail("raw tokens need a vocabulary, and the model carries none for this feature (export with --vocab)");
        ++g_conversions;
        return tokens_to_ids(x, *v, a);
    }
    if (k != 'i' && k != 'u') fail("expected int64 ids, found a ", py::str(a.dtype()).cast<std::string>(), " array");
    if (a.dtype().is(py::dtype::of<std::int64_t>())) return a;
    ++g_conversions;
    return py::array_t<std::int64_t, py::array::forcecast>(a);
}

/// Feature f's column from a dict value. `one_row`: a single sample whose leading axis may be left out
/// (a scalar id, a list of sequence ids).
Column read_column(const Model& m, int f, py::handle obj, bool one_row) {
    const auto& x = m.spec().features[static_cast<std::size_t>(f)];
    const bool seq = x.type == dmin::FeatureType::sequence;
    py::array a = py::array::ensure(obj);
    if (!a) fail("expected a numpy array (or something numpy.asarray takes)");
    const bool ragged = seq && a.ndim() == 1 && a.dtype().kind() == 'O' && !one_row;  // token lists per row
    const py::ssize_t want = seq && !ragged ? 2 : 1;
    if (one_row && a.ndim() == want - 1) a = a.attr("reshape")(seq ? py::make_tuple(1, -1) : py::make_tuple(1));
    if (a.ndim() != want)
        fail("expected an array of shape ", seq ? "[n, max_len]" : "[n]", ", found shape ", shape_of(a));
    if (seq && !ragged && !is_text(a) && a.shape(1) > x.max_len)
        fail("sequence of length ", a.shape(1), " exceeds max_len ", x.max_len);
    Column c;
    c.keep = typed(m, f, a);
    c.data = static_cast<const char*>(c.keep.data());
    c.rows = c.keep.shape(0);
    c.row_stride = c.keep.strides(0);
    if (seq) {
        c.width = c.keep.shape(1);
        c.col_stride = c.keep.strides(1);
    }
    return c;
}

/// A request dict read against the model: one column per feature index (absent ones empty).
struct Request {
    std::vector<Column> cols;
    std::vector<bool> present;
    py::ssize_t rows = 0;
};

bool wanted(const dmin::FeatureSpec& x, Part part) {
    if (part == Part::candidates) return x.role == dmin::Role::candidate;
    if (part == Part::user) return x.role != dmin::Role::candidate;
    return true;
}

/// Reads every entry of `features`; errors name the feature. Unknown names, features of the wrong role
/// for `part`, missing features and row counts that differ between columns are all errors.
Request read_request(const Model& m, const py::dict& features, Part part) {
    const auto& spec = m.spec();
    Request r;
    r.cols.resize(spec.features.size());
    r.present.assign(spec.features.size(), false);
    std::string first;
    for (const auto& [key, value] : features) {
        const std::string name = py::str(key);
        const int f = spec.feature_index(name);
        if (f < 0) fail("unknown feature \"", name, "\"");
        const auto& x = spec.features[static_cast<std::size_t>(f)];
        if (part == Part::candidates && !wanted(x, part))
            fail("feature ", name, ": not a candidate feature (role ", dmin::to_string(x.role), ")");
        try {
            r.cols[static_cast<std::size_t>(f)] = read_column(m, f, value, part == Part::user);
        } catch (const dmin::Error& e) {
            fail("feature ", name, ": ", e.what());
        }
        const py::ssize_t n = r.cols[static_cast<std::size_t>(f)].rows;
        if (first.empty()) {
            first = name;
            r.rows = n;
        } else if (n != r.rows) {
            fail("feature ", name, ": ", n, " rows, but feature ", first, " has ", r.rows);
        }
        r.present[static_cast<std::size_t>(f)] = true;
    }
    for (std::size_t f = 0; f < spec.features.size(); ++f)
        if (wanted(spec.features[f], part) && !r.present[f]) fail("feature ", spec.features[f].name, ": missing");
    if (part == Part::user && r.rows != 1) fail("set_user: expected one sample, found ", r.rows, " rows");
    return r;
}

/// Row r of the request into a full sample in the model's layout (Model::slot offsets), or, for
/// candidates, into one candidate row (cand_offset). Features of other parts are skipped.
void fill_row(const Model& m, const Request& q, py::ssize_t r, Part part, std::int64_t* ids, float* values) {
    const auto& spec = m.spec();
    for (std::size_t f = 0; f < spec.features.size(); ++f) {
        if (!q.present[f]) continue;
        const auto& x = spec.features[f];
        const auto& slot = m.slot(static_cast<int>(f));
        if (part == Part::candidates && x.role != dmin::Role::candidate) continue;
        const int at = part == Part::candidates ? slot.cand_offset : slot.offset;
        const Column& c = q.cols[f];
        if (x.type == dmin::FeatureType::numeric) values[at] = c.value(r);
        else if (x.type == dmin::FeatureType::categorical) ids[at] = c.id(r);
        else
            for (py::ssize_t k = 0; k < x.max_len; ++k) ids[at + k] = c.id(r, k);
    }
}

/// Candidate rows in the layout Scorer::score reads (dmin::Candidates), owned.
struct CandidateRows {
    std::vector<std::int64_t> ids;
    std::vector<float> values;
    std::size_t count = 0, id_stride = 1, value_stride = 1;

    CandidateRows(const Model& m, const py::dict& features) {
        const Request q = read_request(m, features, Part::candidates);
        count = static_cast<std::size_t>(q.rows);
        id_stride = static_cast<std::size_t>(std::max(1, m.num_candidate_ids()));
        value_stride = static_cast<std::size_t>(std::max(1, m.num_candidate_values()));
        ids.assign(count * id_stride, 0);
        values.assign(count * value_stride, 0.0f);
        for (std::size_t c = 0; c < count; ++c)
            fill_row(m, q, static_cast<py::ssize_t>(c), Part::candidates, ids.data() + c * id_stride, values.data() + c * value_stride);
    }
    dmin::Candidates view() const { return {count, ids.data(), id_stride, values.data(), value_stride}; }
};

class PyModel {
public:
    PyModel(const std::string& path, bool self_test, py::object map_larger_than, const std::string& precision, const std::string& tables) {
        dmin::LoadOptions o;
        o.self_test = self_test;
        dmin::set_precision(o, precision);
        dmin::set_tables(o, tables);
        tables_ = tables;
        precision_ = dmin::precision_name(o);
        if (!map_larger_than.is_none()) o.map_tables_larger_than = map_larger_than.cast<std::uint64_t>();
        {
            py::gil_scoped_release nogil;
            model_ = std::make_shared<const Model>(dmin::load(path, o));
            spec_json_ = dmin::io::SafetensorsFile(path).meta("spec");
        }
        path_ = path;
    }

    const std::shared_ptr<const Model>& model() const { return model_; }
    const std::string& path() const { return path_; }
    const std::string& precision() const { return precision_; }
    const std::string& tables() const { return tables_; }
    const std::string& spec_json() const { return spec_json_; }

    /// One probability per row, each computed as `dmin predict` does (set_user, then the candidate part
    /// of the same sample through the fast path). Errors name the sample and feature.
    py::array_t<float> predict(const py::dict& features) const {
        const Model& m = *model_;
        const Request q = read_request(m, features, Part::sample);
        py::array_t<float> out(q.rows);
        float* o = out.mutable_data();
        {
            py::gil_scoped_release nogil;
            Scorer scorer(m);
            std::vector<std::int64_t> ids(static_cast<std::size_t>(m.num_ids()), 0);
            std::vector<float> values(static_cast<std::size_t>(m.num_values()), 0.0f);
            for (py::ssize_t r = 0; r < q.rows; ++r) {
                fill_row(m, q, r, Part::sample, ids.data(), values.data());
                const dmin::SampleView view{ids.data(), values.data()};
                try {
                    scorer.set_user(view);
                    scorer.score(scorer.candidate_from(view), o + r);
                } catch (const dmin::Error& e) {
                    fail("sample ", r, ": ", e.what());
                }
            }
        }
        return out;
    }

private:
    std::shared_ptr<const Model> model_;
    std::string path_, spec_json_, precision_, tables_;
};

class PyScorer {
public:
    explicit PyScorer(const PyModel& m) : model_(m.model()), scorer_(*model_) {}

    void set_user(const py::dict& features) {
        const Model& m = *model_;
        Busy busy(busy_);
        const Request q = read_request(m, features, Part::user);
        ids_.assign(static_cast<std::size_t>(m.num_ids()), 0);
        values_.assign(static_cast<std::size_t>(m.num_values()), 0.0f);
        fill_row(m, q, 0, Part::user, ids_.data(), values_.data());
        py::gil_scoped_release nogil;
        scorer_.set_user({ids_.data(), values_.data()});
    }

    py::array_t<float> score(const py::dict& candidates) {
        Busy busy(busy_);
        const CandidateRows rows(*model_, candidates);
        std::vector<float> tmp(rows.count);  // only a complete result reaches Python
        {
            py::gil_scoped_release nogil;
            scorer_.score(rows.view(), tmp.data());
        }
        py::array_t<float> out(static_cast<py::ssize_t>(rows.count));
        std::copy(tmp.begin(), tmp.end(), out.mutable_data());
        return out;
    }

    py::dict explain(const py::dict& candidates, std::size_t c) {
        Busy busy(busy_);
        const CandidateRows rows(*model_, candidates);
        dmin::Explanation e;
        {
            py::gil_scoped_release nogil;
            e = scorer_.explain(rows.view(), c);
        }
        py::list heads;
        for (const auto& h : e.heads) {
            py::dict d;
            d["branch"] = h.branch;
            d["head"] = h.head;
            d["weights"] = py::array_t<float>(static_cast<py::ssize_t>(h.weights.size()), h.weights.data());
            d["contribution"] = h.contribution;
            heads.append(d);
        }
        py::dict out;
        out["probability"] = e.probability;
        out["logit"] = e.logit;
        out["heads"] = heads;
        out["top_head"] = e.heads.empty() ? py::object(py::none()) : py::object(py::int_(e.top_head()));
        return out;
    }

private:
    /// Marks the scorer in use for one call; a second thread entering meanwhile gets a clear error
    /// instead of corrupting the request state (the GIL is released while scoring).
    class Busy {
    public:
        explicit Busy(std::atomic<bool>& flag) : flag_(flag) {
            if (flag_.exchange(true))
                fail("Scorer: used by two threads at once; create one scorer per thread with Model.scorer()");
        }
        ~Busy() { flag_ = false; }
        Busy(const Busy&) = delete;
        Busy& operator=(const Busy&) = delete;

    private:
        std::atomic<bool>& flag_;
    };

    std::shared_ptr<const Model> model_;  // keeps the model alive as long as the scorer
    Scorer scorer_;
    std::vector<std::int64_t> ids_;
    std::vector<float> values_;
    std::atomic<bool> busy_{false};
};

}  // namespace

PYBIND11_MODULE(_dmin, mod) {
    mod.doc() = "dmin: the C++ DMIN scorer (use the dmin package, which re-exports this module)";
    py::register_exception<dmin::Error>(mod, "Error", PyExc_ValueError);

    py::class_<PyModel, std::shared_ptr<PyModel>>(mod, "Model")
        .def(py::init<const std::string&, bool, py::object, const std::string&, const std::string&>(), py::arg("path"),
             py::arg("self_test") = true, py::arg("map_tables_larger_than") = py::none(), py::arg("precision") = "float32",
             py::arg("tables") = "float32")
        .def_property_readonly("precision", &PyModel::precision)
        .def_property_readonly("tables", &PyModel::tables)
        .def_property_readonly("path", &PyModel::path)
        .def_property_readonly("spec_json", &PyModel::spec_json)
        .def_property_readonly("parameter_count", [](const PyModel& m) { return m.model()->parameter_count(); })
        .def_property_readonly("resident_bytes", [](const PyModel& m) { return m.model()->resident_bytes(); })
        .def_property_readonly("mapped_bytes", [](const PyModel& m) { return m.model()->mapped_bytes(); })
        .def("predict", &PyModel::predict, py::arg("features"))
        .def("scorer", [](const PyModel& m) { return std::make_unique<PyScorer>(m); });

    py::class_<PyScorer>(mod, "Scorer")
        .def(py::init<const PyModel&>(), py::arg("model"))
        .def("set_user", &PyScorer::set_user, py::arg("features"))
        .def("score", &PyScorer::score, py::arg("candidates"))
        .def("explain", &PyScorer::explain, py::arg("candidates"), py::arg("index"));

    mod.def("_conversions", [] { return g_conversions.load(); });
}
