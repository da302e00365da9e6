// Elementwise arithmetic: add, sub, mul (a and b of the same shape, no broadcasting),
// scale (a * factor) and add_scalar (a + value), and the operators that call them.
//
// Gradients, g being the gradient of the output:
//   add: da = g, db = g       sub: da = g, db = -g       mul: da = g * b, db = g * a
//   scale: da = g * factor    add_scalar: da = g
// Reference: torch.add / torch.sub / torch.mul with equal shapes, torch.mul(a, float),
// torch.add(a, float). Unlike PyTorch nothing broadcasts: a shape mismatch is an error naming
// both shapes, because in this codebase a silent broadcast is more often a bug than intended.
//
// Speed: memory bound (src/cpu/elementwise.hpp): 12 bytes moved per float add, ~5 ms per 4M
// elements per core. Inputs that are not contiguous are copied first.
#include "cpu/elementwise.hpp"
#include "cudagrad/ops.hpp"
#include "ops/op_support.hpp"

namespace cudagrad {
namespace {

using detail::check_input;
using detail::check_same_kind;
using detail::check_same_shape;
using detail::dispatch_floating;

// A binary kernel as the functions in cpu/elementwise.hpp take it.
enum class BinaryKind { Add, Subtract, Multiply };

template <typename T>
void run_binary(BinaryKind kind, const T* a, const T* b, T* out, std::int64_t count) {
    switch (kind) {
        case BinaryKind::Add: cpu::add(a, b, out, count); break;
        case BinaryKind::Subtract: cpu::subtract(a, b, out, count); break;
        case BinaryKind::Multiply: cpu::multiply(a, b, out, count); break;
    }
}

// out = a (op) b for contiguous tensors of one dtype and shape; no autograd.
Tensor binary_values(BinaryKind kind, const Tensor& a, const Tensor& b, const char* op) {
    Tensor out = Tensor::empty(a.shape(), a.dtype(), a.device());
    dispatch_floating(a.dtype(), op, [&](auto zero) {
        using T = decltype(zero);
        run_binary<T>(kind, a.data<T>(), b.data<T>(), out.data<T>(), a.numel());
    });
    return out;
}

// out = a * factor + value for a contiguous tensor; no autograd.
Tensor affine_values(const Tensor& a, double factor, double value, const char* op) {
    Tensor out = Tensor::empty(a.shape(), a.dtype(), a.device());
    dispatch_floating(a.dtype(), op, [&](auto zero) {
        using T = decltype(zero);
        if (factor != 1.0) {
            cpu::scale(a.data<T>(), static_cast<T>(factor), out.data<T>(), a.numel());
            if (value != 0.0) cpu::add_scalar(out.data<T>(), static_cast<T>(value), out.data<T>(), a.numel());
        } else {
            cpu::add_scalar(a.data<T>(), static_cast<T>(value), out.data<T>(), a.numel());
        }
    });
    return out;
}

void check_binary_inputs(const Tensor& a, const Tensor& b, const char* op) {
    check_input(a, op, "a");
    check_input(b, op, "b");
    check_same_kind(a, b, op, "a", "b");
    check_same_shape(a, b, op, "a", "b");
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
    check_binary_inputs(a, b, "add");
    Tensor output = binary_values(BinaryKind::Add, a.contiguous(), b.contiguous(), "add");
    record_op(output, "add", {a, b}, [](const Tensor& gradient) { return std::vector<Tensor>{gradient, gradient}; });
    return output;
}

Tensor sub(const Tensor& a, const Tensor& b) {
    check_binary_inputs(a, b, "sub");
    Tensor output = binary_values(BinaryKind::Subtract, a.contiguous(), b.contiguous(), "sub");
    record_op(output, "sub", {a, b}, [](const Tensor& gradient) {
        return std::vector<Tensor>{gradient, affine_values(gradient.contiguous(), -1.0, 0.0, "sub backward")};
    });
    return output;
}

Tensor mul(const Tensor& a, const Tensor& b) {
    check_binary_inputs(a, b, "mul");
    Tensor a_values = a.contiguous(), b_values = b.contiguous();
    Tensor output = binary_values(BinaryKind::Multiply, a_values, b_values, "mul");
    // The closure keeps detached handles on the input values: each gradient needs the other input.
    record_op(output, "mul", {a, b},
              [a_saved = a_values.detach(), b_saved = b_values.detach(), a_needs = a.defined() && a.requires_grad(),
               b_needs = b.defined() && b.requires_grad()](const Tensor& gradient) {
                  Tensor g = gradient.contiguous();
                  return std::vector<Tensor>{
                      a_needs ? binary_values(BinaryKind::Multiply, g, b_saved, "mul backward") : Tensor(),
                      b_needs ? binary_values(BinaryKind::Multiply, g, a_saved, "mul backward") : Tensor()};
              });
    return output;
}

Tensor scale(const Tensor& a, double factor) {
    check_input(a, "scale", "a");
    Tensor output = affine_values(a.contiguous(), factor, 0.0, "scale");
    record_op(output, "scale", {a}, [factor](const Tensor& gradient) {
        return std::vector<Tensor>{affine_values(gradient.contiguous(), factor, 0.0, "scale backward")};
    });
    return output;
}

Tensor add_scalar(const Tensor& a, double value) {
    check_input(a, "add_scalar", "a");
    Tensor output = affine_values(a.contiguous(), 1.0, value, "add_scalar");
    record_op(output, "add_scalar", {a}, [](const Tensor& gradient) { return std::vector<Tensor>{gradient}; });
    return output;
}

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator*(const Tensor& a, double factor) { return scale(a, factor); }

}  // namespace cudagrad
