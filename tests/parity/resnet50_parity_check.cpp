// resnet50_parity_check: cudagrad's ResNet-50 against torchvision's, given PyTorch's answers.
//
//   resnet50_parity_check --weights W.safetensors --input IN.safetensors --reference REF.safetensors
//
// tools/parity_resnet50.py writes the three files (see there) and runs this program. With
// torchvision's resnet50(num_classes=10) weights (batch norms randomised), an input x: (2, 3, 64, 64)
// and labels: (2), this program repeats in float32 and in float64 what the script did in PyTorch:
//   eval mode:   logits = model(x)
//   train mode:  logits = model(x); loss = cross_entropy(logits, labels, label_smoothing);
//                loss.backward() -> every parameter's gradient; the batch norms' updated
//                running_mean, running_var and num_batches_tracked
//   SGD:         one step of torch.optim.SGD (lr, momentum, nesterov from the reference metadata;
//                weight decay on conv/linear weights, none on batch-norm parameters and biases)
// and compares each tensor with the reference. The error of a tensor is
//     relative_error(ours, reference) = max_i |ours_i - reference_i| / max_i |reference_i|
// (computed in double). The rules, justified in docs/parity.md:
//   float64, everything:    relative_error(ours64, torch64) <= 1e-8; for the SGD step the
//                           weight change (new - old) is compared, so that the weight decay and
//                           momentum terms are seen and not drowned by the weights themselves.
//   float32 logits, loss:   relative_error(ours32, torch32) <= 1e-4, the acceptance test.
//   float32 gradients, batch-norm statistics, new weights: train mode with 2 images is
//                           ill-conditioned (4 pixels per image in layer4), so PyTorch's own
//                           float32 answer is up to ~50% away from the exact (float64) one on some
//                           tensors. Per tensor, ours must be as close to the exact answer as
//                           PyTorch's float32 answer is, within a factor:
//                             relative_error(ours32, torch64) <= max(1e-4, 10 * relative_error(torch32, torch64))
//                           and relative_error(ours32, torch32) is printed as well.
//   num_batches_tracked:    equal.
// Prints one line per quantity with the worst tensor, and exits 1 on any mismatch.
//
// Speed: ResNet-50 at 64x64 is ~0.34 GFLOP per image forward, so the train step in both types is
// ~4 GFLOP, a few seconds on 2 cores; reading the ~0.6 GB reference file takes about as long.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <cudagrad/cudagrad.hpp>
#include <cudagrad/nn/resnet.hpp>
#include <cudagrad/optim.hpp>
#include <cudagrad/serialize.hpp>

using namespace cudagrad;

namespace {

constexpr double float64_tolerance = 1e-8;
constexpr double float32_acceptance = 1e-4;   // logits and loss, straight against PyTorch float32
constexpr double float32_floor = 1e-4;        // below this a float32 tensor always passes
constexpr double float32_noise_factor = 10.0; // ours may be this many times PyTorch's own float32 error

double relative_error(const std::vector<double>& ours, const std::vector<double>& reference) {
    double difference = 0.0, scale = 0.0;
    for (std::size_t i = 0; i < ours.size(); ++i) {
        double error = std::abs(ours[i] - reference[i]);
        difference = std::isnan(error) ? INFINITY : std::max(difference, error);
        scale = std::max(scale, std::abs(reference[i]));
    }
    return scale > 0 ? difference / scale : difference;
}

std::vector<double> minus(std::vector<double> a, const std::vector<double>& b) {
    for (std::size_t i = 0; i < a.size(); ++i) a[i] -= b[i];
    return a;
}

// One line of the report: a kind of tensor (e.g. "float32 gradients") over all its tensors.
struct Quantity {
    std::string name, rule;
    int tensors = 0, failures = 0;
    double worst_error = 0.0, worst_allowed = 0.0, worst_ratio = -1.0, worst_direct = 0.0;
    std::string worst_tensor;
    std::vector<std::string> failure_lines;

    // error <= allowed passes; `direct` is the plain error against PyTorch float32 (informational).
    void add(const std::string& tensor, double error, double allowed, double direct = NAN) {
        ++tensors;
        double ratio = allowed > 0 ? error / allowed : (error > 0 ? INFINITY : 0.0);
        if (std::isnan(error)) ratio = INFINITY;
        if (ratio > worst_ratio) {
            worst_ratio = ratio;
            worst_error = error;
            worst_allowed = allowed;
            worst_tensor = tensor;
        }
        if (!std::isnan(direct)) worst_direct = std::max(worst_direct, direct);
        if (!(error <= allowed)) {
            ++failures;
            char line[512];
            std::snprintf(line, sizeof line, "      %-40s error %.3g > allowed %.3g", tensor.c_str(), error, allowed);
            failure_lines.push_back(line);
        }
    }
    void fail_outright(const std::string& tensor, const std::string& why) {
        ++tensors;
        ++failures;
        worst_ratio = INFINITY;
        worst_tensor = tensor;
        failure_lines.push_back("      " + tensor + ": " + why);
    }
    void print() const {
        std::printf("  %-34s %3d tensor%s  worst %-38s error %9.3g  allowed %9.3g  %s\n", name.c_str(), tensors,
                    tensors == 1 ? " " : "s", worst_tensor.c_str(), worst_error, worst_allowed,
                    failures ? "FAIL" : "ok");
        if (worst_direct > 0) std::printf("  %-34s   (max error against PyTorch float32 itself: %.3g)\n", "", worst_direct);
        std::printf("  %-34s   rule: %s\n", "", rule.c_str());
        for (std::size_t i = 0; i < failure_lines.size() && i < 10; ++i) std::printf("%s\n", failure_lines[i].c_str());
        if (failure_lines.size() > 10) std::printf("      ... and %zu more\n", failure_lines.size() - 10);
    }
};

struct Reference {
    TensorFile file;
    const Tensor& get(const std::string& key) const {
        auto found = file.tensors.find(key);
        check(found != file.tensors.end(), "resnet50_parity_check", "the reference file has no tensor '", key, "'");
        return found->second;
    }
    double number(const std::string& key) const {
        auto found = file.metadata.find(key);
        check(found != file.metadata.end(), "resnet50_parity_check", "the reference file has no metadata '", key, "'");
        return std::stod(found->second);
    }
};

class Checker {
public:
    Checker(const Reference& reference, bool float32) : reference_(reference), float32_(float32) {}

    Quantity& quantity(const std::string& name, const std::string& rule) {
        for (auto& existing : quantities_) {
            if (existing.name == name) return existing;
        }
        quantities_.push_back(Quantity{name, rule});
        return quantities_.back();
    }

    // Logits and loss: float32 straight against PyTorch float32 (the acceptance rule), float64
    // against float64.
    void compare_plain(const std::string& quantity_name, const std::string& key, const Tensor& ours) {
        Quantity& q = quantity(quantity_name, float32_ ? "error(ours32, torch32) <= 1e-4" : "error(ours64, torch64) <= 1e-8");
        const Tensor& expected = reference_.get((float32_ ? "float32." : "float64.") + key);
        if (!shapes_match(q, key, ours, expected)) return;
        q.add(key, relative_error(ours.to_double_vector(), expected.to_double_vector()),
              float32_ ? float32_acceptance : float64_tolerance);
        if (float32_) std::printf("STAT %s %s %.4g %.4g %.4g\n", quantity_name.c_str(), key.c_str(),
            relative_error(ours.to_double_vector(), reference_.get("float64." + key).to_double_vector()),
            relative_error(reference_.get("float32." + key).to_double_vector(), reference_.get("float64." + key).to_double_vector()),
            relative_error(ours.to_double_vector(), expected.to_double_vector()));
    }

    // Gradients, statistics and new weights: float32 against PyTorch's own float32 error; float64
    // tightly. `before`, when given, is subtracted from both sides in float64 (compares updates).
    void compare_noisy(const std::string& quantity_name, const std::string& key, const Tensor& ours,
                       const std::optional<std::vector<double>>& before = std::nullopt) {
        Quantity& q = quantity(quantity_name, float32_ ? "error(ours32, torch64) <= max(1e-4, 10 x error(torch32, torch64))"
                                                       : (before ? "error(ours64 - old, torch64 - old) <= 1e-8"
                                                                 : "error(ours64, torch64) <= 1e-8"));
        const Tensor& exact = reference_.get("float64." + key);
        if (!shapes_match(q, key, ours, exact)) return;
        std::vector<double> ours_values = ours.to_double_vector(), exact_values = exact.to_double_vector();
        if (!float32_) {
            if (before) {
                ours_values = minus(std::move(ours_values), *before);
                exact_values = minus(std::move(exact_values), *before);
            }
            q.add(key, relative_error(ours_values, exact_values), float64_tolerance);
            return;
        }
        std::vector<double> torch32 = reference_.get("float32." + key).to_double_vector();
        double noise = relative_error(torch32, exact_values);
        double mine = relative_error(ours_values, exact_values);
        std::printf("STAT %s %s %.4g %.4g %.4g\n", quantity_name.c_str(), key.c_str(), mine, noise, relative_error(ours_values, torch32));
        q.add(key, mine, std::max(float32_floor, float32_noise_factor * noise),
              relative_error(ours_values, torch32));
    }

    void compare_counter(const std::string& key, const Tensor& ours) {
        Quantity& q = quantity(std::string(float32_ ? "float32" : "float64") + " num_batches_tracked", "equal");
        const Tensor& expected = reference_.get((float32_ ? "float32." : "float64.") + key);
        if (!shapes_match(q, key, ours, expected)) return;
        q.add(key, ours.item() == expected.item() ? 0.0 : INFINITY, 0.0);
    }

    bool report() const {
        bool pass = true;
        for (const auto& q : quantities_) {
            q.print();
            pass = pass && q.failures == 0;
        }
        return pass;
    }

private:
    bool shapes_match(Quantity& q, const std::string& key, const Tensor& ours, const Tensor& expected) {
        if (ours.shape() == expected.shape()) return true;
        q.fail_outright(key, "shape " + shape_string(ours.shape()) + " but PyTorch's is " + shape_string(expected.shape()));
        return false;
    }

    const Reference& reference_;
    bool float32_;
    std::vector<Quantity> quantities_;
};

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The whole comparison in one element type; returns whether everything matched.
bool check_in(DType dtype, const nn::StateDict& weights, const Tensor& input, const Tensor& labels,
              const Reference& reference) {
    const bool float32 = dtype == DType::Float32;
    const std::string type = float32 ? "float32" : "float64";
    auto start = std::chrono::steady_clock::now();
    Checker checker(reference, float32);

    nn::ResNetConfig config;
    config.depth = 50;
    config.num_classes = static_cast<std::int64_t>(reference.number("num_classes"));
    nn::ResNet model(config);
    model.to(dtype);
    model.load_state_dict(weights, true);  // converts the float32 weights to dtype
    Tensor x = input.to(dtype);

    model.eval();
    {
        NoGradGuard no_grad;
        checker.compare_plain(type + " eval-mode logits", "eval_logits", model(x));
    }

    model.train();
    Tensor logits = model(x);
    Tensor loss = cross_entropy(logits, labels, reference.number("label_smoothing"));
    loss.backward();
    checker.compare_plain(type + " train-mode logits", "train_logits", logits.detach());
    checker.compare_plain(type + " loss", "loss", loss.detach().reshape({1}));
    for (auto& [name, parameter] : model.named_parameters()) {
        Tensor gradient = parameter.grad();
        if (!gradient.defined()) {
            checker.quantity(type + " gradients", "").fail_outright(name, "no gradient");
            continue;
        }
        checker.compare_noisy(type + " gradients", "grad." + name, gradient);
    }
    for (auto& [name, buffer] : model.named_buffers()) {
        if (name.size() >= 19 && name.compare(name.size() - 19, 19, "num_batches_tracked") == 0) {
            checker.compare_counter("buffer." + name, buffer);
        } else {
            checker.compare_noisy(type + " batch-norm running stats", "buffer." + name, buffer);
        }
    }

    std::map<std::string, std::vector<double>> before;
    for (auto& [name, parameter] : model.named_parameters()) before[name] = parameter.to_double_vector();
    nn::WeightDecaySplit split = nn::split_for_weight_decay(model);
    auto group = [](const nn::NamedTensors& named, std::optional<double> weight_decay) {
        ParameterGroup result;
        for (auto& [name, tensor] : named) {
            result.parameters.push_back(tensor);
            result.names.push_back(name);
        }
        result.weight_decay = weight_decay;
        return result;
    };
    SgdOptions options;
    options.lr = reference.number("sgd.lr");
    options.momentum = reference.number("sgd.momentum");
    options.nesterov = reference.number("sgd.nesterov") != 0;
    options.weight_decay = reference.number("sgd.weight_decay");
    SGD optimizer({group(split.decay, std::nullopt), group(split.no_decay, 0.0)}, options);
    optimizer.step();
    for (auto& [name, parameter] : model.named_parameters()) {
        checker.compare_noisy(type + " weights after SGD step", "updated." + name, parameter,
                              float32 ? std::nullopt : std::optional<std::vector<double>>(before[name]));
    }

    std::printf("%s (%.1f s):\n", type.c_str(), seconds_since(start));
    bool pass = checker.report();
    std::fflush(stdout);
    return pass;
}

std::string flag_value(int argc, char** argv, const std::string& flag) {
    for (int i = 1; i + 1 < argc; ++i) {
        if (argv[i] == flag) return argv[i + 1];
    }
    return "";
}

}  // namespace

int main(int argc, char** argv) {
    std::string weights_path = flag_value(argc, argv, "--weights");
    std::string input_path = flag_value(argc, argv, "--input");
    std::string reference_path = flag_value(argc, argv, "--reference");
    if (weights_path.empty() || input_path.empty() || reference_path.empty()) {
        std::fprintf(stderr, "usage: resnet50_parity_check --weights W.safetensors --input IN.safetensors "
                             "--reference REF.safetensors\n(tools/parity_resnet50.py writes them and runs this)\n");
        return 2;
    }
    try {
        auto start = std::chrono::steady_clock::now();
        TensorFile weights_file = load_safetensors(weights_path);
        TensorFile input_file = load_safetensors(input_path);
        Reference reference{load_safetensors(reference_path)};
        nn::StateDict weights(weights_file.tensors.begin(), weights_file.tensors.end());
        auto tensor = [&](const char* name) {
            auto found = input_file.tensors.find(name);
            check(found != input_file.tensors.end(), "resnet50_parity_check", input_path, " has no tensor '", name, "'");
            return found->second;
        };
        Tensor input = tensor("input"), labels = tensor("labels");
        std::printf("resnet50_parity_check: input %s, labels %s; files read in %.1f s\n",
                    shape_string(input.shape()).c_str(), shape_string(labels.shape()).c_str(), seconds_since(start));
        bool pass = check_in(DType::Float64, weights, input, labels, reference);
        pass = check_in(DType::Float32, weights, input, labels, reference) && pass;
        std::printf("resnet50_parity_check: %s\n", pass ? "all match" : "MISMATCH");
        return pass ? 0 : 1;
    } catch (const std::exception& error) {
        std::printf("resnet50_parity_check: error: %s\n", error.what());
        return 1;
    }
}
