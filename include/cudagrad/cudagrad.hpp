// The whole public API in one include.
#pragma once

#include "cudagrad/allocator.hpp"
#include "cudagrad/autograd.hpp"
#include "cudagrad/device.hpp"
#include "cudagrad/dtype.hpp"
#include "cudagrad/error.hpp"
#include "cudagrad/init.hpp"
#include "cudagrad/ops.hpp"
#include "cudagrad/random.hpp"
#include "cudagrad/tensor.hpp"
#include "cudagrad/threads.hpp"
