// SGD with momentum, dampening, Nesterov momentum and per-group weight decay.
//
// Matches torch.optim.SGD with foreach=False: the update formulas are in include/cudagrad/optim.hpp,
// and each one is computed in the same order and in the parameter's own precision as PyTorch
// does it (d = g + wd * w; buffer = buffer * momentum + (1 - dampening) * d; w = w + (-lr) * d),
// so float64 runs agree with PyTorch to within a rounding or two.
//
// What limits speed: memory. One fused pass per parameter reads the weight, the gradient and the
// buffer and writes the weight and the buffer: 5 x 4 bytes per float32 element, so ResNet-50's
// 25.6 M parameters move about 0.5 GB per step: about 95 ms on this 2-core machine (measured,
// with one or two threads alike: the memory bus is the limit, not the arithmetic). Doing weight
// decay, momentum and the update as separate tensor ops (as the foreach=False PyTorch code does)
// would read and write everything three times over.
//
// On a GPU (float32 parameters, all on one device) the same update runs as ONE kernel launch
// per step over every parameter (kernels/sgd.cu): the host lists the parameters with a
// gradient in a small table, copies it to the device and launches one block per 8192-element
// chunk. ResNet-50's 0.5 GB per step take ~0.17 ms at ~3 TB/s.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>
#include <string>

#include "cpu/parallel.hpp"
#include "cudagrad/autograd.hpp"
#include "cudagrad/optim.hpp"

#ifdef CUDAGRAD_WITH_CUDA
#include "cuda/runtime.hpp"
#include "cuda/sgd.hpp"
#endif

namespace cudagrad {
namespace {

constexpr const char* op = "SGD";

// Loop-invariant settings of one parameter's update, already in the parameter's precision (as
// PyTorch converts its Python-float alphas to the tensor's element type).
template <typename T>
struct UpdateConstants {
    T lr;
    T weight_decay;
    T momentum;
    T one_minus_dampening;
    bool use_weight_decay;  // weight_decay != 0: skipping the add keeps inf/NaN weights as PyTorch does
    bool use_momentum;
    bool nesterov;
    bool first_step;  // the buffer is created from d rather than updated
};

// The fused update of elements [begin, end). The flags are the same for every element, so
// GCC unswitches the loop and each variant vectorises.
template <typename T>
void update_range(T* weight, const T* gradient, T* buffer, std::int64_t begin, std::int64_t end,
                  const UpdateConstants<T>& c) {
    for (std::int64_t i = begin; i < end; ++i) {
        T d = gradient[i];
        if (c.use_weight_decay) d = d + c.weight_decay * weight[i];
        if (c.use_momentum) {
            const T b = c.first_step ? d : buffer[i] * c.momentum + c.one_minus_dampening * d;
            buffer[i] = b;
            d = c.nesterov ? d + c.momentum * b : b;
        }
        weight[i] = weight[i] + (-c.lr) * d;
    }
}

// Below this many elements one thread does the whole parameter: waking the pool costs more
// than updating 32 K elements (about 10 microseconds).
constexpr std::int64_t update_grain = 1 << 15;

template <typename T>
void update_parameter(T* weight, const T* gradient, T* buffer, std::int64_t count, const UpdateConstants<T>& c) {
    cpu::parallel_for(0, count, update_grain, [&](std::int64_t begin, std::int64_t end) {
        update_range(weight, gradient, buffer, begin, end, c);
    });
}

// Updates one contiguous parameter in place, in its own precision.
void update_tensor(Tensor& weight, const Tensor& gradient, Tensor& buffer, double lr, const SgdOptions& options,
                   double weight_decay, bool first_step) {
    auto run = [&](auto zero) {
        using T = decltype(zero);
        UpdateConstants<T> c{};
        c.lr = static_cast<T>(lr);
        c.weight_decay = static_cast<T>(weight_decay);
        c.momentum = static_cast<T>(options.momentum);
        c.one_minus_dampening = static_cast<T>(1.0 - options.dampening);
        c.use_weight_decay = weight_decay != 0.0;
        c.use_momentum = options.momentum != 0.0;
        c.nesterov = options.nesterov;
        c.first_step = first_step;
        T* buffer_data = c.use_momentum ? buffer.data<T>() : nullptr;
        update_parameter(weight.data<T>(), gradient.data<T>(), buffer_data, weight.numel(), c);
    };
    if (weight.dtype() == DType::Float64) {
        run(double{});
    } else {
        run(float{});
    }
}

// One parameter of a GPU step: the contiguous tensors the kernel reads and writes, and the
// parameter to copy the result back into when it is not contiguous itself.
struct GpuUpdate {
    Tensor parameter;
    Tensor weight;    // parameter itself, or a contiguous copy of it
    Tensor gradient;  // contiguous
    Tensor buffer;    // undefined without momentum; a new one on the first step
    Tensor* buffer_slot;  // where a new buffer is kept once the launch succeeded
    double weight_decay;
    bool first_step;
};

// Every GPU parameter's update in one launch (kernels/sgd.cu), then the write-back of the
// non-contiguous ones. Everything was checked by step(): float32, one device.
void update_on_gpu(const std::vector<GpuUpdate>& updates, double lr, const SgdOptions& options) {
    if (updates.empty()) return;
#ifdef CUDAGRAD_WITH_CUDA
    const Device device = updates.front().weight.device();
    make_device_current(device);
    std::vector<cuda::SgdParameterUpdate> entries;
    entries.reserve(updates.size());
    for (const GpuUpdate& update : updates) {
        cuda::SgdParameterUpdate entry;
        entry.weight = update.weight.data<float>();
        entry.gradient = update.gradient.data<float>();
        entry.buffer = update.buffer.defined() ? update.buffer.data<float>() : nullptr;
        entry.count = update.weight.numel();
        entry.weight_decay = static_cast<float>(update.weight_decay);
        entry.use_weight_decay = update.weight_decay != 0.0;
        entry.first_step = update.first_step;
        entries.push_back(entry);
    }
    std::vector<std::int64_t> table;
    const std::int64_t chunks = cuda::build_sgd_table(entries, table);
    // The table travels as an int64 tensor staged in pinned memory: a copy from pageable memory
    // may block the host until the GPU catches up, which would put a host sync in every step.
    // The pinned block is reused only after this copy has run (pinned_allocator), and the
    // device block's reuse is kept behind the kernel's reads by stream order.
    const Shape table_shape = {static_cast<std::int64_t>(table.size())};
    Tensor staged_table = Tensor::empty_in(table_shape, DType::Int64, pinned_allocator());
    std::memcpy(staged_table.raw_data(), table.data(), table.size() * sizeof(std::int64_t));
    Tensor device_table = staged_table.to(device);
    cuda::SgdHyperparameters hyperparameters;
    hyperparameters.lr = static_cast<float>(lr);
    hyperparameters.momentum = static_cast<float>(options.momentum);
    hyperparameters.one_minus_dampening = static_cast<float>(1.0 - options.dampening);
    hyperparameters.use_momentum = options.momentum != 0.0;
    hyperparameters.nesterov = options.nesterov;
    cuda::sgd_step(device_table.data<std::int64_t>(), static_cast<std::int64_t>(entries.size()), chunks,
                   hyperparameters);
    for (const GpuUpdate& update : updates) {
        if (update.first_step) *update.buffer_slot = update.buffer;
        if (!update.weight.same_as(update.parameter)) Tensor(update.parameter).copy_(update.weight);
    }
#else
    (void)updates;
    (void)lr;
    (void)options;
    fail(op, "cudagrad was built without CUDA, so parameters cannot be on a GPU");
#endif
}

void check_hyperparameter(double value, const char* name) {
    check(std::isfinite(value) && value >= 0.0, op, name, " must be a finite number >= 0, got ", value);
}

}  // namespace

ParameterGroup named_parameter_group(const std::vector<std::pair<std::string, Tensor>>& named,
                                     std::optional<double> weight_decay) {
    ParameterGroup group;
    for (const auto& [name, tensor] : named) {
        group.parameters.push_back(tensor);
        group.names.push_back(name);
    }
    group.weight_decay = weight_decay;
    return group;
}

SGD::SGD(std::vector<ParameterGroup> groups, SgdOptions options)
    : groups_(std::move(groups)), options_(options), lr_(options.lr) {
    check_hyperparameter(options_.lr, "lr");
    check_hyperparameter(options_.momentum, "momentum");
    check_hyperparameter(options_.dampening, "dampening");
    check_hyperparameter(options_.weight_decay, "weight_decay");
    check(!options_.nesterov || (options_.momentum > 0.0 && options_.dampening == 0.0), op,
          "Nesterov momentum requires a momentum > 0 and zero dampening (momentum ", options_.momentum,
          ", dampening ", options_.dampening, ")");

    std::set<const TensorImpl*> seen_parameters;
    std::set<std::string> seen_keys;
    std::size_t total = 0;
    for (std::size_t g = 0; g < groups_.size(); ++g) {
        const ParameterGroup& group = groups_[g];
        if (group.weight_decay) {
            const std::string name = "weight_decay of group " + std::to_string(g);
            check_hyperparameter(*group.weight_decay, name.c_str());
        }
        check(group.names.empty() || group.names.size() == group.parameters.size(), op, "group ", g, " has ",
              group.parameters.size(), " parameters but ", group.names.size(), " names");
        keys_.emplace_back();
        for (std::size_t i = 0; i < group.parameters.size(); ++i) {
            const Tensor& parameter = group.parameters[i];
            std::string key = group.names.empty() ? std::to_string(g) + "." + std::to_string(i) : group.names[i];
            check(!key.empty(), op, "parameter ", i, " of group ", g, " has an empty name");
            check(parameter.defined(), op, "parameter '", key, "' is undefined");
            check(is_floating(parameter.dtype()), op, "parameter '", key, "' must be float32 or float64, got ",
                  parameter.description());
            check(seen_parameters.insert(parameter.impl_ptr().get()).second, op, "parameter '", key,
                  "' appears more than once in the parameter groups");
            check(seen_keys.insert(key).second, op, "two parameters are named '", key, "'");
            keys_.back().push_back(std::move(key));
        }
        momentum_buffers_.emplace_back(group.parameters.size());
        total += group.parameters.size();
    }
    check(total > 0, op, "got an empty parameter list");
}

double SGD::weight_decay(std::size_t group) const {
    check(group < groups_.size(), op, "group ", group, " is out of range (", groups_.size(), " groups)");
    return groups_[group].weight_decay.value_or(options_.weight_decay);
}

void SGD::set_lr(double lr) {
    check_hyperparameter(lr, "lr");
    lr_ = lr;
}

const std::string& SGD::parameter_key(std::size_t group, std::size_t index) const {
    check(group < keys_.size() && index < keys_[group].size(), op, "no parameter ", index, " in group ", group);
    return keys_[group][index];
}

Tensor SGD::momentum_buffer(std::size_t group, std::size_t index) const {
    check(group < momentum_buffers_.size() && index < momentum_buffers_[group].size(), op, "no parameter ", index,
          " in group ", group);
    return momentum_buffers_[group][index];
}

void SGD::step() {
    // Validate everything first: a step that fails halfway would leave some weights updated.
    // Parameters may live on the CPU or on one GPU (float32 there), not on several devices.
    const Tensor* first_parameter = nullptr;
    const std::string* first_key = nullptr;
    for (std::size_t g = 0; g < groups_.size(); ++g) {
        for (std::size_t i = 0; i < groups_[g].parameters.size(); ++i) {
            const Tensor& parameter = groups_[g].parameters[i];
            const Tensor gradient = parameter.grad();
            if (!gradient.defined()) continue;
            const std::string& key = keys_[g][i];
            if (first_parameter == nullptr) {
                first_parameter = &parameter;
                first_key = &key;
            }
            check(parameter.device() == first_parameter->device(), op, "parameter '", key, "' is on ",
                  parameter.device().str(), " but parameter '", *first_key, "' is on ",
                  first_parameter->device().str(), ": all parameters of one optimiser must be on one device");
            check(parameter.device().is_cpu() || parameter.dtype() == DType::Float32, op, "parameter '", key,
                  "' is ", parameter.description(), ": on a GPU, SGD updates float32 parameters only");
            check(gradient.shape() == parameter.shape(), op, "the gradient of parameter '", key, "' has shape ",
                  shape_string(gradient.shape()), " but the parameter has shape ", shape_string(parameter.shape()));
            check(gradient.dtype() == parameter.dtype() && gradient.device() == parameter.device(), op,
                  "the gradient of parameter '", key, "' is ", gradient.description(), " but the parameter is ",
                  parameter.description());
        }
    }

    NoGradGuard no_grad;
    std::vector<GpuUpdate> gpu_updates;  // collected, then one launch for all of them
    for (std::size_t g = 0; g < groups_.size(); ++g) {
        const double group_weight_decay = weight_decay(g);
        for (std::size_t i = 0; i < groups_[g].parameters.size(); ++i) {
            Tensor& parameter = groups_[g].parameters[i];
            const Tensor gradient = parameter.grad();
            if (!gradient.defined() || parameter.numel() == 0) continue;
            Tensor& buffer = momentum_buffers_[g][i];
            const bool first_step = options_.momentum != 0.0 && !buffer.defined();

            // Parameters are normally contiguous; a strided one is updated through a contiguous
            // copy that is then written back into its own storage.
            Tensor weight = parameter.is_contiguous() ? parameter : parameter.contiguous();
            const Tensor gradient_values = gradient.contiguous();
            if (parameter.device().is_cuda()) {
                // Buffers are created here or loaded with clone(): contiguous on the GPU. A new
                // one is kept only after the launch (update_on_gpu).
                Tensor step_buffer =
                    first_step ? Tensor::empty(parameter.shape(), parameter.dtype(), parameter.device()) : buffer;
                gpu_updates.push_back(GpuUpdate{parameter, weight, gradient_values, step_buffer, &buffer,
                                                group_weight_decay, first_step});
                continue;
            }
            if (first_step) buffer = Tensor::empty(parameter.shape(), parameter.dtype(), parameter.device());
            update_tensor(weight, gradient_values, buffer, lr_, options_, group_weight_decay, first_step);
            if (!weight.same_as(parameter)) parameter.copy_(weight);
        }
    }
    update_on_gpu(gpu_updates, lr_, options_);
    ++step_count_;
}

// ------------------------------------------------------------------ checkpoints

namespace {

const std::string buffer_prefix = "momentum_buffer.";

// The one-element tensor `name` of a state dictionary, as a double; errors name SGD and the key.
double state_scalar(const std::map<std::string, Tensor>& state, const std::string& name, DType dtype) {
    const auto found = state.find(name);
    check(found != state.end(), op, "load_state_dict: the state has no '", name, "' tensor");
    const Tensor& tensor = found->second;
    check(tensor.defined() && tensor.numel() == 1 && tensor.dtype() == dtype, op, "load_state_dict: '", name,
          "' must be a one-element ", dtype_name(dtype), " tensor, got ",
          tensor.defined() ? tensor.description() : std::string("an undefined tensor"));
    return tensor.to(Device::cpu()).item();
}

}  // namespace

std::map<std::string, Tensor> SGD::state_dict() const {
    std::map<std::string, Tensor> state;
    state["step"] = Tensor::from_vector(std::vector<std::int64_t>{step_count_}, {1});
    state["lr"] = Tensor::from_vector(std::vector<double>{lr_}, {1});
    std::vector<std::int64_t> present;
    for (std::size_t g = 0; g < groups_.size(); ++g) {
        for (std::size_t i = 0; i < groups_[g].parameters.size(); ++i) {
            const Tensor& buffer = momentum_buffers_[g][i];
            present.push_back(buffer.defined() ? 1 : 0);
            if (buffer.defined()) state[buffer_prefix + keys_[g][i]] = buffer.to(Device::cpu()).clone();
        }
    }
    state["momentum_buffer_present"] = Tensor::from_vector(present, {static_cast<std::int64_t>(present.size())});
    return state;
}

void SGD::load_state_dict(const std::map<std::string, Tensor>& state) {
    // Check everything, then change anything: a bad checkpoint leaves the optimiser as it was.
    const double step = state_scalar(state, "step", DType::Int64);
    check(step >= 0, op, "load_state_dict: 'step' is negative (", step, ")");
    const double lr = state_scalar(state, "lr", DType::Float64);
    check(std::isfinite(lr) && lr >= 0.0, op, "load_state_dict: 'lr' must be a finite number >= 0, got ", lr);

    std::size_t total = 0;
    for (const ParameterGroup& group : groups_) total += group.parameters.size();
    const auto present_entry = state.find("momentum_buffer_present");
    check(present_entry != state.end(), op, "load_state_dict: the state has no 'momentum_buffer_present' tensor");
    const Tensor& present_tensor = present_entry->second;
    check(present_tensor.defined() && present_tensor.dtype() == DType::Int64 &&
              present_tensor.shape() == Shape{static_cast<std::int64_t>(total)},
          op, "load_state_dict: 'momentum_buffer_present' must be an int64 tensor of shape [", total,
          "] (one flag per parameter of this optimiser), got ",
          present_tensor.defined() ? present_tensor.description() : std::string("an undefined tensor"));
    const std::vector<std::int64_t> present = present_tensor.to_int64_vector();

    std::set<std::string> expected = {"step", "lr", "momentum_buffer_present"};
    std::vector<std::vector<Tensor>> loaded(groups_.size());
    std::size_t flat = 0;
    for (std::size_t g = 0; g < groups_.size(); ++g) {
        loaded[g].resize(groups_[g].parameters.size());
        for (std::size_t i = 0; i < groups_[g].parameters.size(); ++i, ++flat) {
            const Tensor& parameter = groups_[g].parameters[i];
            const std::string name = buffer_prefix + keys_[g][i];
            const auto found = state.find(name);
            check(present[flat] == 0 || present[flat] == 1, op, "load_state_dict: 'momentum_buffer_present' holds ",
                  present[flat], " for parameter '", keys_[g][i], "'; expected 0 or 1");
            if (present[flat] == 0) continue;
            check(found != state.end(), op, "load_state_dict: the state has no '", name,
                  "' tensor (the momentum buffer of parameter '", keys_[g][i], "')");
            const Tensor& buffer = found->second;
            check(buffer.defined() && is_floating(buffer.dtype()), op, "load_state_dict: '", name,
                  "' must be a float32 or float64 tensor, got ",
                  buffer.defined() ? buffer.description() : std::string("an undefined tensor"));
            check(buffer.shape() == parameter.shape(), op, "load_state_dict: '", name, "' has shape ",
                  shape_string(buffer.shape()), " but parameter '", keys_[g][i], "' has shape ",
                  shape_string(parameter.shape()));
            expected.insert(name);
            loaded[g][i] = buffer;
        }
    }
    for (const auto& entry : state) {
        check(expected.count(entry.first) == 1, op, "load_state_dict: unexpected tensor '", entry.first,
              "': no parameter of this optimiser has that key, or its momentum_buffer_present flag is 0");
    }

    for (std::size_t g = 0; g < groups_.size(); ++g) {
        for (std::size_t i = 0; i < groups_[g].parameters.size(); ++i) {
            const Tensor& parameter = groups_[g].parameters[i];
            const Tensor& buffer = loaded[g][i];
            momentum_buffers_[g][i] =
                buffer.defined() ? buffer.to(parameter.dtype()).to(parameter.device()).clone() : Tensor();
        }
    }
    step_count_ = static_cast<std::int64_t>(step);
    lr_ = lr;
}

void SGD::zero_grad(bool set_to_none) {
    for (ParameterGroup& group : groups_)
        for (Tensor& parameter : group.parameters) parameter.zero_grad(set_to_none);
}

}  // namespace cudagrad
