// The tape: ordering the graph and walking it backwards. See autograd.hpp for the idea.
#include "cudagrad/autograd.hpp"

#include <unordered_map>
#include <unordered_set>

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
    Tensor source = gradient.contiguous();
    dispatch_floating(accumulator.dtype(), "backward", [&](auto zero) {
        using T = decltype(zero);
        T* target = accumulator.data<T>();
        const T* values = source.data<T>();
        for (std::int64_t i = 0; i < accumulator.numel(); ++i) target[i] += values[i];
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

void add_gradient(std::shared_ptr<TensorImpl>& slot, const Tensor& gradient, const TensorImpl& owner) {
    check(gradient.shape() == owner.shape, "backward", "a gradient of shape ", shape_string(gradient.shape()),
          " arrived for a tensor of shape ", shape_string(owner.shape));
    if (!slot) {
        // The first gradient is copied, so that later accumulation never writes into a tensor
        // that some op still holds.
        slot = gradient.clone().impl_ptr();
    } else {
        Tensor accumulator(slot);
        detail::accumulate_into(accumulator, gradient);
    }
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
    check(seed.shape() == root.shape(), "backward", "gradient ", seed.description(), " does not match output ",
          root.description());

    NoGradGuard no_grad;  // the backward closures build no graph of their own
    std::unordered_map<TensorImpl*, std::shared_ptr<TensorImpl>> pending;  // gradients of non-leaves
    std::vector<std::shared_ptr<TensorImpl>> order = reverse_topological_order(root);
    add_gradient(pending[root.impl_ptr().get()], seed, root.impl());

    for (const std::shared_ptr<TensorImpl>& owned : order) {
        TensorImpl* tensor = owned.get();
        std::shared_ptr<Node> node = tensor->grad_fn;
        auto found = pending.find(tensor);
        if (found == pending.end() || !found->second) continue;  // nothing flowed here
        Tensor output_gradient(found->second);
        pending.erase(found);
        if (!node) {  // a leaf
            add_gradient(tensor->grad, output_gradient, *tensor);
            continue;
        }
        check(static_cast<bool>(node->backward), "backward", "the graph through ", node->op_name,
              " was already freed by an earlier backward(); pass retain_graph=true to the first call");
        std::vector<Tensor> input_gradients = node->backward(output_gradient);
        check(input_gradients.size() == node->inputs.size(), "backward", node->op_name, " returned ",
              input_gradients.size(), " gradients for ", node->inputs.size(), " inputs");
        for (std::size_t i = 0; i < node->inputs.size(); ++i) {
            const Tensor& input = node->inputs[i];
            if (!input.defined() || !input.requires_grad() || !input_gradients[i].defined()) continue;
            add_gradient(pending[input.impl_ptr().get()], input_gradients[i], input.impl());
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
