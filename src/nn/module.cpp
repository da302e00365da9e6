// Module bookkeeping: names, state dicts, train/eval, device moves, printing.
#include "cudagrad/nn/module.hpp"

#include <set>
#include <sstream>

#include "cudagrad/autograd.hpp"

namespace cudagrad::nn {

void Module::register_parameter(const std::string& name, Tensor* parameter) {
    check(parameter != nullptr && parameter->defined(), "Module::register_parameter", "parameter '", name,
          "' is undefined");
    parameters_.emplace_back(name, parameter);
}

void Module::register_buffer(const std::string& name, Tensor* buffer) {
    check(buffer != nullptr && buffer->defined(), "Module::register_buffer", "buffer '", name, "' is undefined");
    buffers_.emplace_back(name, buffer);
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> module) {
    check(module != nullptr, "Module::register_module", "child '", name, "' is null");
    for (const auto& [existing, unused] : children_) {
        check(existing != name, "Module::register_module", "duplicate child name '", name, "'");
    }
    children_.emplace_back(name, std::move(module));
}

Module& Module::child(const std::string& name) const {
    for (const auto& [child_name, module] : children_) {
        if (child_name == name) return *module;
    }
    fail("Module::child", type_name(), " has no child named '", name, "'");
}

NamedTensors Module::named_parameters(const std::string& prefix) const {
    NamedTensors result;
    for (const auto& [name, tensor] : parameters_) result.emplace_back(prefix + name, *tensor);
    for (const auto& [name, module] : children_) {
        NamedTensors below = module->named_parameters(prefix + name + ".");
        result.insert(result.end(), below.begin(), below.end());
    }
    return result;
}

NamedTensors Module::named_buffers(const std::string& prefix) const {
    NamedTensors result;
    for (const auto& [name, tensor] : buffers_) result.emplace_back(prefix + name, *tensor);
    for (const auto& [name, module] : children_) {
        NamedTensors below = module->named_buffers(prefix + name + ".");
        result.insert(result.end(), below.begin(), below.end());
    }
    return result;
}

std::vector<Tensor> Module::parameters() const {
    std::vector<Tensor> result;
    for (auto& [name, tensor] : named_parameters()) result.push_back(tensor);
    return result;
}

std::int64_t Module::parameter_count() const {
    std::int64_t count = 0;
    for (const Tensor& tensor : parameters()) count += tensor.numel();
    return count;
}

StateDict Module::state_dict() const {
    StateDict state;
    for (auto& [name, tensor] : named_parameters()) state[name] = tensor;
    for (auto& [name, tensor] : named_buffers()) state[name] = tensor;
    return state;
}

void Module::check_state_dict(const StateDict& state, bool strict) const {
    StateDict own = state_dict();
    for (const auto& [name, target] : own) {
        auto found = state.find(name);
        if (found == state.end()) {
            check(!strict, "load_state_dict", "missing tensor '", name, "' (expected ", target.description(), ")");
            continue;
        }
        const Tensor& source = found->second;
        check(source.defined(), "load_state_dict", "tensor '", name, "' is undefined");
        check(source.shape() == target.shape(), "load_state_dict", "tensor '", name, "' has shape ",
              shape_string(source.shape()), " but the model expects ", shape_string(target.shape()));
        bool both_floating = is_floating(source.dtype()) && is_floating(target.dtype());
        check(source.dtype() == target.dtype() || both_floating, "load_state_dict", "tensor '", name, "' has dtype ",
              dtype_name(source.dtype()), " but the model expects ", dtype_name(target.dtype()));
    }
    if (strict) {
        for (const auto& [name, tensor] : state) {
            check(own.count(name) == 1, "load_state_dict", "unexpected tensor '", name, "' ", tensor.description(),
                  " (not part of this model)");
        }
    }
}

void Module::load_state_dict(const StateDict& state, bool strict) {
    check_state_dict(state, strict);  // everything first, so a bad file changes nothing
    NoGradGuard no_grad;
    for (auto& [name, target] : state_dict()) {
        auto found = state.find(name);
        if (found != state.end()) Tensor(target).copy_(found->second);
    }
}

void Module::train(bool training) {
    training_ = training;
    for (auto& [name, module] : children_) module->train(training);
}

void Module::for_each_tensor(const std::function<void(Tensor&, bool)>& visit) {
    for (auto& [name, tensor] : parameters_) visit(*tensor, true);
    for (auto& [name, tensor] : buffers_) visit(*tensor, false);
    for (auto& [name, module] : children_) module->for_each_tensor(visit);
}

void Module::to(Device device) {
    for_each_tensor([&](Tensor& tensor, bool is_parameter) {
        Tensor moved = tensor.to(device);
        if (moved.same_as(tensor)) return;
        if (is_parameter) moved.set_requires_grad(tensor.requires_grad());
        tensor = moved;
    });
}

void Module::to(DType dtype) {
    for_each_tensor([&](Tensor& tensor, bool is_parameter) {
        if (!is_floating(tensor.dtype()) || tensor.dtype() == dtype) return;  // num_batches_tracked stays int64
        Tensor converted = tensor.to(dtype);
        if (is_parameter) converted.set_requires_grad(tensor.requires_grad());
        tensor = converted;
    });
}

void Module::zero_grad(bool set_to_none) {
    for (auto& [name, tensor] : parameters_) tensor->zero_grad(set_to_none);
    for (auto& [name, module] : children_) module->zero_grad(set_to_none);
}

std::string Module::describe(int indent) const {
    std::ostringstream text;
    text << type_name() << '(' << extra_description();
    if (!children_.empty()) {
        text << '\n';
        for (const auto& [name, module] : children_) {
            text << std::string(indent + 2, ' ') << '(' << name << "): " << module->describe(indent + 2) << '\n';
        }
        text << std::string(indent, ' ');
    }
    text << ')';
    return text.str();
}

}  // namespace cudagrad::nn
