// Checkpoints: the model's and the optimiser's tensors plus training metadata in one
// safetensors file. See checkpoint.hpp for the layout.
#include "cudagrad/checkpoint.hpp"

#include <sstream>

#include "cudagrad/serialize.hpp"

namespace cudagrad {
namespace {
constexpr const char* format_name = "cudagrad.checkpoint.v1";
constexpr const char* optimizer_prefix = "optimizer.";

std::int64_t parse_integer(const std::map<std::string, std::string>& metadata, const std::string& key,
                           const std::string& path) {
    auto found = metadata.find(key);
    if (found == metadata.end()) return 0;
    try {
        std::size_t used = 0;
        long long value = std::stoll(found->second, &used);
        check(used == found->second.size(), "load_checkpoint", "");
        return value;
    } catch (const std::exception&) {
        fail("load_checkpoint", path, ": metadata '", key, "' is not an integer: '", found->second, "'");
    }
}
}  // namespace

void save_checkpoint(const std::string& path, const nn::Module& model, const SGD* optimizer,
                     const CheckpointInfo& info) {
    std::map<std::string, Tensor> tensors = model.state_dict();
    if (optimizer) {
        for (auto& [key, tensor] : optimizer->state_dict()) tensors[optimizer_prefix + key] = tensor;
    }
    std::map<std::string, std::string> metadata;
    for (auto& [key, value] : info.config) metadata["config." + key] = value;
    metadata["format"] = format_name;
    metadata["epoch"] = std::to_string(info.epoch);
    metadata["step"] = std::to_string(info.step);
    std::ostringstream rng, best;
    rng << info.rng_state[0] << ' ' << info.rng_state[1] << ' ' << info.rng_state[2] << ' ' << info.rng_state[3];
    metadata["rng_state"] = rng.str();
    best.precision(17);
    best << info.best_top1;
    metadata["best_top1"] = best.str();
    save_safetensors(path, tensors, metadata);
}

CheckpointInfo load_checkpoint(const std::string& path, nn::Module& model, SGD* optimizer) {
    TensorFile file = load_safetensors(path);
    auto format = file.metadata.find("format");
    check(format == file.metadata.end() || format->second == format_name, "load_checkpoint", path,
          ": unknown format '", format == file.metadata.end() ? "" : format->second, "' (expected ", format_name, ")");

    nn::StateDict model_state, optimizer_state;
    for (auto& [name, tensor] : file.tensors) {
        if (name.rfind(optimizer_prefix, 0) == 0) {
            optimizer_state[name.substr(std::string(optimizer_prefix).size())] = tensor;
        } else {
            model_state[name] = tensor;
        }
    }
    // Check the model's part before touching the optimiser, and the optimiser's (its own
    // load validates before writing) before touching the model.
    try {
        model.check_state_dict(model_state, true);
    } catch (const Error& error) {
        fail("load_checkpoint", path, ": ", error.what());
    }
    if (optimizer) {
        try {
            optimizer->load_state_dict(optimizer_state);
        } catch (const Error& error) {
            fail("load_checkpoint", path, ": ", error.what());
        }
    }
    model.load_state_dict(model_state, true);

    CheckpointInfo info;
    info.epoch = parse_integer(file.metadata, "epoch", path);
    info.step = parse_integer(file.metadata, "step", path);
    if (auto found = file.metadata.find("best_top1"); found != file.metadata.end()) {
        info.best_top1 = std::stod(found->second);
    }
    if (auto found = file.metadata.find("rng_state"); found != file.metadata.end()) {
        std::istringstream words(found->second);
        for (auto& word : info.rng_state) {
            check(static_cast<bool>(words >> word), "load_checkpoint", path, ": malformed rng_state '", found->second, "'");
        }
    }
    for (auto& [key, value] : file.metadata) {
        if (key.rfind("config.", 0) == 0) info.config[key.substr(7)] = value;
    }
    return info;
}

}  // namespace cudagrad
