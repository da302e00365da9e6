// Autograd: a small dynamic tape, in the manner of micrograd and flashlight.
//
// Each differentiable op that sees an input requiring a gradient gives its output a Node: the
// op's name, the inputs, and a closure that maps the gradient of the output to the gradients
// of the inputs. Tensor::backward() collects every tensor reachable through grad_fn links,
// orders them so that a tensor comes after every tensor computed from it (reverse topological
// order), and walks that order once, calling each closure with the summed gradient of its
// output. A tensor used twice (the residual add) therefore receives the sum of both paths.
// Gradients of leaves (parameters, inputs with requires_grad) accumulate into Tensor::grad()
// across backward calls, as in PyTorch, until zero_grad().
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "cudagrad/tensor.hpp"

namespace cudagrad {

// Given the gradient of the op's output, returns one gradient per input (an undefined Tensor
// for inputs that need none).
using BackwardFunction = std::function<std::vector<Tensor>(const Tensor& output_gradient)>;

struct Node {
    std::string op_name;
    std::vector<Tensor> inputs;
    BackwardFunction backward;  // emptied after use unless the graph is retained
};

// Whether ops record the graph on this thread. Off inside NoGradGuard and during backward.
bool grad_mode_enabled();

class NoGradGuard {
public:
    NoGradGuard();
    ~NoGradGuard();
    NoGradGuard(const NoGradGuard&) = delete;
    NoGradGuard& operator=(const NoGradGuard&) = delete;

private:
    bool previous_;
};

// True when an op with these inputs must record a Node (grad mode on and an input requires it).
bool any_requires_grad(const std::vector<Tensor>& inputs);

// Attaches a Node to `output` when any input requires a gradient and grad mode is on.
// The closure must not capture `output` itself (that would be a reference cycle); capture
// output.detach() instead.
void record_op(Tensor& output, const char* op_name, std::vector<Tensor> inputs, BackwardFunction backward);

// Backpropagates from `root`. Without `gradient`, root must hold one element and its gradient
// is 1. Unless retain_graph, the closures are released as they run and a second backward
// through the same graph is an error.
void backward(const Tensor& root, const Tensor& gradient = Tensor(), bool retain_graph = false);

}  // namespace cudagrad
