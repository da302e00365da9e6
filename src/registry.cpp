// The implementation registry (see registry.hpp): a table of op families and their choices,
// the current choice of each, the math mode, and the once-only notices of fallbacks.
#include "cudagrad/registry.hpp"

#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <set>
#include <sstream>

#include "cudagrad/error.hpp"
#include "registry_internal.hpp"

namespace cudagrad {
namespace {

struct Family {
    const char* op;
    std::vector<std::string> choices;  // the first is the default
};

const std::vector<Family>& families() {
    static const std::vector<Family> table = {
        {"conv2d", {"cudnn", "direct", "implicit_gemm", "tensor_core"}},
        {"gemm", {"cublas", "naive", "tiled", "register_blocked", "vectorized", "warp_tiled", "tensor_core"}},
        {"batch_norm", {"cudnn", "cuda"}},
        {"max_pool", {"cudnn", "cuda"}},
        {"avg_pool", {"cudnn", "cuda"}},
        {"relu", {"cudnn", "cuda"}},
        {"softmax", {"cudnn", "cuda"}},
    };
    return table;
}

const Family& family(const std::string& op) {
    for (const Family& entry : families()) {
        if (op == entry.op) return entry;
    }
    std::string known;
    for (const Family& entry : families()) known += std::string(known.empty() ? "" : ", ") + entry.op;
    fail("implementation", "unknown op family '", op, "' (known: ", known, ")");
}

void check_choice(const std::string& op, const std::string& choice) {
    const Family& entry = family(op);
    for (const std::string& name : entry.choices) {
        if (name == choice) return;
    }
    std::string valid;
    for (const std::string& name : entry.choices) valid += (valid.empty() ? "" : ", ") + name;
    fail("set_implementation", "unknown implementation '", choice, "' for ", op, " (choices: ", valid, ")");
}

struct State {
    std::mutex mutex;
    std::map<std::string, std::string> chosen;
    MathMode math = MathMode::FP32;
    bool deterministic = false;
    std::set<std::string> notices_given;
};

std::map<std::string, std::string> defaults() {
    std::map<std::string, std::string> chosen;
    for (const Family& entry : families()) chosen[entry.op] = entry.choices.front();
    return chosen;
}

// "a:b,c:d" -> {{a, b}, {c, d}}, every pair checked.
std::map<std::string, std::string> parse_choices(const std::string& text) {
    std::map<std::string, std::string> parsed;
    std::stringstream stream(text);
    std::string item;
    while (std::getline(stream, item, ',')) {
        if (item.empty()) continue;
        const auto colon = item.find(':');
        check(colon != std::string::npos && colon > 0 && colon + 1 < item.size(), "CUDAGRAD_IMPL", "entry '", item,
              "' in '", text, "' is not of the form op:implementation");
        const std::string op = item.substr(0, colon), choice = item.substr(colon + 1);
        check_choice(op, choice);
        parsed[op] = choice;
    }
    return parsed;
}

State& state() {
    static State* shared = [] {
        auto* created = new State;
        created->chosen = defaults();
        if (const char* text = std::getenv("CUDAGRAD_IMPL")) {
            for (const auto& [op, choice] : parse_choices(text)) created->chosen[op] = choice;
        }
        if (const char* text = std::getenv("CUDAGRAD_MATH"); text != nullptr && *text != '\0') {
            created->math = parse_math_mode(text);
        }
        if (const char* text = std::getenv("CUDAGRAD_DETERMINISTIC")) created->deterministic = std::string(text) == "1";
        return created;
    }();
    return *shared;
}

}  // namespace

std::vector<std::string> implementation_ops() {
    std::vector<std::string> ops;
    for (const Family& entry : families()) ops.emplace_back(entry.op);
    return ops;
}

std::vector<std::string> implementation_choices(const std::string& op) { return family(op).choices; }

void set_implementation(const std::string& op, const std::string& implementation) {
    check_choice(op, implementation);
    State& shared = state();
    std::lock_guard<std::mutex> lock(shared.mutex);
    shared.chosen[op] = implementation;
}

std::string implementation(const std::string& op) {
    family(op);  // validates the name
    State& shared = state();
    std::lock_guard<std::mutex> lock(shared.mutex);
    return shared.chosen[op];
}

void reset_implementations() {
    State& shared = state();
    std::lock_guard<std::mutex> lock(shared.mutex);
    shared.chosen = defaults();
    shared.math = MathMode::FP32;
}

void set_implementations_from_string(const std::string& text) {
    const auto parsed = parse_choices(text);
    State& shared = state();
    std::lock_guard<std::mutex> lock(shared.mutex);
    for (const auto& [op, choice] : parsed) shared.chosen[op] = choice;
}

std::string describe_implementations() {
    State& shared = state();
    std::lock_guard<std::mutex> lock(shared.mutex);
    std::ostringstream text;
    for (const Family& entry : families()) text << entry.op << '=' << shared.chosen[entry.op] << ' ';
    text << "math=" << math_mode_name(shared.math) << (shared.deterministic ? " deterministic" : "");
    return text.str();
}

void set_math_mode(MathMode mode) {
    State& shared = state();
    std::lock_guard<std::mutex> lock(shared.mutex);
    shared.math = mode;
}

MathMode math_mode() {
    State& shared = state();
    std::lock_guard<std::mutex> lock(shared.mutex);
    return shared.math;
}

void set_deterministic(bool enabled) {
    State& shared = state();
    std::lock_guard<std::mutex> lock(shared.mutex);
    shared.deterministic = enabled;
}

bool deterministic() {
    State& shared = state();
    std::lock_guard<std::mutex> lock(shared.mutex);
    return shared.deterministic;
}

const char* math_mode_name(MathMode mode) {
    switch (mode) {
        case MathMode::FP32: return "fp32";
        case MathMode::TF32: return "tf32";
        case MathMode::BF16: return "bf16";
    }
    return "unknown";
}

MathMode parse_math_mode(const std::string& text) {
    if (text == "fp32") return MathMode::FP32;
    if (text == "tf32") return MathMode::TF32;
    if (text == "bf16") return MathMode::BF16;
    fail("math mode", "unknown math mode '", text, "' (expected fp32, tf32 or bf16)");
}

namespace detail {
void notice_once(const std::string& key, const std::string& message) {
    State& shared = state();
    {
        std::lock_guard<std::mutex> lock(shared.mutex);
        if (!shared.notices_given.insert(key).second) return;
    }
    std::fprintf(stderr, "cudagrad: %s\n", message.c_str());
}
}  // namespace detail

}  // namespace cudagrad
