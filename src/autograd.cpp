// The tape: ordering the graph and walking it backwards. See autograd.hpp for the idea.
#include "cudagrad/autograd.hpp"

#include <unordered_map>
#include <unordered_set>

#include "cpu/parallel.hpp"

#ifdef CUDAGRAD_WITH_CUDA
#include "cuda/elementwise.hpp"
#endif
#include "ops/op_support.hpp"

namespace cudagrad {
namespace {
thread_local bool grad_mode = true;
}

bool grad_mode_enabled() { return grad_mode; }

NoGradGuard::NoGradGuard() : previous_(grad_mode) { grad_mode = false; }
NoGradGuard::~NoGradGuard() { grad_mode = previous_; }

bool any_requires_grad(const std::vector<Tensor>& inputs) {
    if (!grad_mode) return false;
    for (const Tensor& input : inputs) {
        if (input.defined() && input.requires_grad()) return true;
    }
    return false;
}

void record_op(Tensor& output, const char* op_name, std::vector<Tensor> inputs, BackwardFunction backward) {
    if (!any_requires_grad(inputs)) return;
    auto node = std::make_shared<Node>();
    node->op_name = op_name;
    node->inputs = std::move(inputs);
    node->backward = std::move(backward);
    output.impl().grad_fn = std::move(node);
    output.impl().requires_grad = true;
}

namespace detail {
void accumulate_into(Tensor& accumulator, const Tensor& gradient) {
    check_same_shape(accumulator, gradient, "backward", "gradient", "incoming gradient");
    check(accumulator.dtype() == gradient.dtype(), "backward", "a ", dtype_name(gradient.dtype()),
          " gradient arrived for a ", dtype_name(accumulator.dtype()), " tensor");
    check(accumulator.device() == gradient.device(), "backward", "a gradient on ", gradient.device().str(),
          " arrived for a tensor on ", accumulator.device().str());
    Tensor source = gradient.contiguous();
    const std::int64_t count = accumulator.numel();
    if (accumulator.device().is_cuda()) {
#ifdef CUDAGRAD_WITH_CUDA
        make_device_current(accumulator.device());
        cuda::axpy(1.0f, source.data<float>(), accumulator.data<float>(), count);
#endif
        return;
    }
    dispatch_floating(accumulator.dtype(), "backward", [&](auto zero) {
        using T = decltype(zero);
        T* target = accumulator.data<T>();
        const T* values = source.data<T>();
        // A memory-bound add: split across threads only when it is big enough to pay for it.
        cpu::parallel_for(0, count, 1 << 15, [&](std::int64_t begin, std::int64_t end) {
            for (std::int64_t i = begin; i < end; ++i) target[i] += values[i];
        });
    });
}
}  // namespace detail

namespace {

// Every tensor reachable from root through grad_fn links, ordered so that each tensor comes
// before the inputs it was computed from (root first). Iterative depth-first search, so a
// 150-layer network does not exhaust the stack. The order owns its tensors: backward frees
// each node's links as it goes, and the tensors must outlive the walk.
std::vector<std::shared_ptr<TensorImpl>> reverse_topological_order(const Tensor& root) {
    std::vector<std::shared_ptr<TensorImpl>> postorder;
    std::unordered_set<TensorImpl*> visited;
    struct Frame {
        std::shared_ptr<TensorImpl> tensor;
        std::size_t next_input;
    };
    std::vector<Frame> stack{{root.impl_ptr(), 0}};
    visited.insert(root.impl_ptr().get());
    while (!stack.empty()) {
        Frame& frame = stack.back();
        const std::shared_ptr<Node>& node = frame.tensor->grad_fn;
        if (node && frame.next_input < node->inputs.size()) {
            const Tensor& input = node->inputs[frame.next_input++];
            if (input.defined() && input.requires_grad() && visited.insert(input.impl_ptr().get()).second) {
                stack.push_back({input.impl_ptr(), 0});
            }
            continue;
        }
        postorder.push_back(std::move(frame.tensor));
        stack.pop_back();
    }
    return {postorder.rbegin(), postorder.rend()};
}

// True when nothing but `tensor` refers to its memory: no other handle, no view.
bool sole_owner(const Tensor& tensor) {
    return tensor.impl_ptr().use_count() == 1 && tensor.impl().storage.use_count() == 1 && tensor.is_contiguous();
}

// Adds `gradient` into a gradient slot. Gradients are adopted without copying whenever this
// is their only reference (the common case), and copied otherwise: an op may hand the same
// tensor to two inputs (add does), and accumulating in place into a shared tensor would
// corrupt the other one.
void add_gradient(std::shared_ptr<TensorImpl>& slot, Tensor gradient, const TensorImpl& owner) {
    check(gradient.shape() == owner.shape, "backward", "a gradient of shape ", shape_string(gradient.shape()),
          " arrived for a tensor of shape ", shape_string(owner.shape));
    if (!slot) {
        slot = sole_owner(gradient) ? gradient.impl_ptr() : gradient.clone().impl_ptr();
        return;
    }
    Tensor accumulator(slot);
    if (slot.use_count() > 2 || accumulator.impl().storage.use_count() > 1 || !accumulator.is_contiguous()) {
        accumulator = accumulator.clone();  // someone else holds the old gradient: do not write into it
        slot = accumulator.impl_ptr();
    }
    detail::accumulate_into(accumulator, gradient);
}

}  // namespace

void backward(const Tensor& root, const Tensor& gradient, bool retain_graph) {
    check(root.defined(), "backward", "called on an undefined tensor");
    check(root.requires_grad(), "backward", "the tensor does not require a gradient (", root.description(),
          "): no input of the computation had requires_grad set, or it ran under NoGradGuard");
    Tensor seed = gradient;
    if (!seed.defined()) {
        check(root.numel() == 1, "backward", "an implicit gradient needs a one-element output, got ",
              root.description(), "; pass the gradient explicitly");
        seed = Tensor::ones(root.shape(), root.dtype(), root.device());
    }
    // The device too: the closures pick their CPU or GPU branch from the gradient they receive.
    check(seed.shape() == root.shape() && seed.dtype() == root.dtype() && seed.device() == root.device(), "backward",
          "gradient ", seed.description(), " does not match output ", root.description());

    NoGradGuard no_grad;  // the backward closures build no graph of their own
    std::unordered_map<TensorImpl*, std::shared_ptr<TensorImpl>> pending;  // gradients of non-leaves
    std::vector<std::shared_ptr<TensorImpl>> order = reverse_topological_order(root);
    add_gradient(pending[root.impl_ptr().get()], seed, root.impl());

    for (const std::shared_ptr<TensorImpl>& owned : order) {
        TensorImpl* tensor = owned.get();
        std::shared_ptr<Node> node = tensor->grad_fn;
        auto found = pending.find(tensor);
        if (found == pending.end() || !found->second) continue;  // nothing flowed here
        Tensor output_gradient(std::move(found->second));
        pending.erase(found);
        if (!node) {  // a leaf
            add_gradient(tensor->grad, std::move(output_gradient), *tensor);
            continue;
        }
        check(static_cast<bool>(node->backward), "backward", "the graph through ", node->op_name,
              " was already freed by an earlier backward(); pass retain_graph=true to the first call");
        std::vector<Tensor> input_gradients = node->backward(output_gradient);
        output_gradient = Tensor();  // dropped now, so gradients that are views of it can be adopted
        check(input_gradients.size() == node->inputs.size(), "backward", node->op_name, " returned ",
              input_gradients.size(), " gradients for ", node->inputs.size(), " inputs");
        for (std::size_t i = 0; i < node->inputs.size(); ++i) {
            const Tensor& input = node->inputs[i];
            if (!input.defined() || !input.requires_grad() || !input_gradients[i].defined()) continue;
            add_gradient(pending[input.impl_ptr().get()], std::move(input_gradients[i]), input.impl());
        }
        if (!retain_graph) {
            // Free the closure (and the tensors it saved) and the links to the inputs now, so
            // a finished step holds no activations and a long chain is not torn down by one
            // deep recursion of destructors.
            node->backward = nullptr;
            node->inputs.clear();
        }
    }
}

}  // namespace cudagrad
