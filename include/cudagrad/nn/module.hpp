// Module: the building block of models, as torch.nn.Module.
//
// A module owns named parameters (tensors that train) and buffers (state that does not, such
// as batch norm's running statistics) and named child modules. Names join with dots, so a
// ResNet's state reads exactly as torchvision's ("layer1.0.conv1.weight",
// "bn1.running_mean", "fc.bias") and torchvision weights load without renaming.
//
// Subclasses keep their tensors as members and register their addresses; the registry never
// copies a tensor, so moving a module to another device replaces the members themselves.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cudagrad/tensor.hpp"

namespace cudagrad::nn {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;
using StateDict = std::map<std::string, Tensor>;

class Module {
public:
    virtual ~Module() = default;
    Module() = default;
    Module(const Module&) = delete;
    Module& operator=(const Module&) = delete;

    virtual Tensor forward(const Tensor& input) = 0;
    Tensor operator()(const Tensor& input) { return forward(input); }

    // The class name, for printing ("Conv2d", "Bottleneck").
    virtual std::string type_name() const = 0;
    // One line of hyper-parameters for printing, e.g. "3, 64, kernel_size=7, stride=2".
    virtual std::string extra_description() const { return ""; }

    NamedTensors named_parameters(const std::string& prefix = "") const;
    NamedTensors named_buffers(const std::string& prefix = "") const;
    std::vector<Tensor> parameters() const;
    std::int64_t parameter_count() const;

    // Parameters and buffers together, by full name.
    StateDict state_dict() const;
    // Copies values into the existing tensors (shapes and dtypes must match). With strict,
    // a missing or unexpected name is an error naming it; errors leave the module unchanged.
    void load_state_dict(const StateDict& state, bool strict = true);
    // The checks of load_state_dict alone: throws on the first problem, changes nothing.
    void check_state_dict(const StateDict& state, bool strict = true) const;

    void train(bool training = true);
    void eval() { train(false); }
    bool is_training() const { return training_; }

    // Moves every parameter and buffer (and their gradients) to `device` / converts to `dtype`.
    void to(Device device);
    void to(DType dtype);

    void zero_grad(bool set_to_none = true);

    // A tree of the module and its children, as PyTorch prints models.
    std::string describe(int indent = 0) const;

    const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const { return children_; }
    Module& child(const std::string& name) const;

protected:
    void register_parameter(const std::string& name, Tensor* parameter);
    void register_buffer(const std::string& name, Tensor* buffer);
    template <typename M>
    std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
        add_child(name, module);
        return module;
    }

private:
    void add_child(const std::string& name, std::shared_ptr<Module> module);
    void for_each_tensor(const std::function<void(Tensor&, bool is_parameter)>& visit);

    std::vector<std::pair<std::string, Tensor*>> parameters_;
    std::vector<std::pair<std::string, Tensor*>> buffers_;
    std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
    bool training_ = true;
};

}  // namespace cudagrad::nn
