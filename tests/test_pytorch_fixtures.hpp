// Shared by the test_pytorch_*.cpp tests: reading the PyTorch fixtures that
// tools/make_fixtures.py writes into tests/fixtures/, and comparing our results with them.
//
// A fixture is one case of one op: its metadata says which op ("op") and with which options;
// its tensors are the inputs, "output", "grad_output" (the gradient fed back), "grad.<input>"
// (PyTorch's gradients) and, for batch norm, "updated.<buffer>" (running statistics after the
// step). All floating tensors are float64. Each case runs twice:
//   float64 on the stored values: must agree to rounding (rtol 1e-9);
//   float32 on the inputs rounded to float32: compared with the same float64 answer, so the
//   tolerance (rtol 1e-4) covers both the rounded inputs and float32 arithmetic.
// Absolute tolerances scale with the largest expected magnitude: a sum of many terms of size
// s carries rounding error in proportion to s even where the result itself is near zero.
#pragma once

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <cudagrad/cudagrad.hpp>
#include <cudagrad/serialize.hpp>

#include "catch.hpp"
#include "compare.hpp"

namespace cudagrad::testing {

struct Fixture {
    std::string name;  // the file name without ".safetensors", equal to metadata "case"
    TensorFile file;

    bool has(const std::string& key) const { return file.tensors.count(key) != 0; }

    const Tensor& tensor(const std::string& key) const {
        auto found = file.tensors.find(key);
        check(found != file.tensors.end(), "fixture", name, " has no tensor '", key, "'");
        return found->second;
    }
    const std::string& text(const std::string& key) const {
        auto found = file.metadata.find(key);
        check(found != file.metadata.end(), "fixture", name, " has no metadata '", key, "'");
        return found->second;
    }
    std::int64_t integer(const std::string& key) const { return std::stoll(text(key)); }
    double number(const std::string& key) const { return std::stod(text(key)); }
    bool flag(const std::string& key) const {
        check(text(key) == "true" || text(key) == "false", "fixture", name, ": metadata '", key,
              "' must be true or false, got ", text(key));
        return text(key) == "true";
    }
    // "h,w" -> {h, w}
    std::pair<std::int64_t, std::int64_t> pair(const std::string& key) const {
        const std::string& value = text(key);
        std::size_t comma = value.find(',');
        check(comma != std::string::npos, "fixture", name, ": metadata '", key, "' must be \"h,w\", got ", value);
        return {std::stoll(value.substr(0, comma)), std::stoll(value.substr(comma + 1))};
    }
};

// Every fixture tools/make_fixtures.py wrote, sorted by name. Other generators share the
// folder (tools/make_optimizer_fixtures.py); their files are told apart by metadata "generator".
inline std::vector<Fixture> all_fixtures() {
    const std::string generator = "tools/make_fixtures.py,";
    std::vector<Fixture> fixtures;
    for (const auto& entry : std::filesystem::directory_iterator(CUDAGRAD_FIXTURE_DIR)) {
        if (entry.path().extension() != ".safetensors") continue;
        Fixture fixture{entry.path().stem().string(), load_safetensors(entry.path().string())};
        auto written_by = fixture.file.metadata.find("generator");
        if (written_by == fixture.file.metadata.end() || written_by->second.rfind(generator, 0) != 0) continue;
        fixtures.push_back(std::move(fixture));
    }
    std::sort(fixtures.begin(), fixtures.end(), [](const Fixture& a, const Fixture& b) { return a.name < b.name; });
    return fixtures;
}

// The fixtures of one op; a test that finds none fails, so a renamed op cannot pass vacuously.
inline std::vector<Fixture> fixtures_for(const std::string& op) {
    std::vector<Fixture> selected;
    for (Fixture& fixture : all_fixtures()) {
        if (fixture.text("op") == op) selected.push_back(std::move(fixture));
    }
    INFO("op " << op << " in " << CUDAGRAD_FIXTURE_DIR);
    REQUIRE(!selected.empty());
    return selected;
}

struct Precision {
    DType dtype;
    double rtol;
    double atol;  // multiplied by max(1, largest |expected|)
    const char* name;
};

inline const std::vector<Precision>& precisions() {
    static const std::vector<Precision> all = {{DType::Float64, 1e-9, 1e-11, "float64"},
                                               {DType::Float32, 1e-4, 1e-5, "float32"}};
    return all;
}

// A new tensor holding a stored tensor converted to `dtype`. Always a copy, so that in-place
// updates (running statistics) and set_requires_grad never reach the fixture itself.
inline Tensor fresh(const Tensor& stored, DType dtype, bool requires_grad = false) {
    Tensor copy = stored.dtype() == dtype ? stored.clone() : stored.to(dtype);
    if (requires_grad) copy.set_requires_grad(true);
    return copy;
}

inline void check_against(const Tensor& actual, const Tensor& expected, const Precision& precision,
                          const std::string& what) {
    double largest = 1.0;
    for (double value : expected.to_double_vector()) largest = std::max(largest, std::abs(value));
    INFO(what << " in " << precision.name << " (expected " << expected.description() << ")");
    REQUIRE(actual.defined());
    REQUIRE(actual.dtype() == precision.dtype);
    require_close(actual, expected, precision.rtol, precision.atol * largest);
}

// The gradient our backward left in `input` against PyTorch's "grad.<key>".
inline void check_gradient(const Fixture& fixture, const std::string& key, const Tensor& input,
                           const Precision& precision) {
    INFO(fixture.name << ": gradient of " << key);
    REQUIRE(input.grad().defined());
    check_against(input.grad(), fixture.tensor("grad." + key), precision, "grad." + key);
}

}  // namespace cudagrad::testing
