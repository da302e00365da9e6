// The whole public API in one include.
#pragma once

#include "cudagrad/allocator.hpp"
#include "cudagrad/autograd.hpp"
#include "cudagrad/checkpoint.hpp"
#include "cudagrad/device.hpp"
#include "cudagrad/dtype.hpp"
#include "cudagrad/error.hpp"
#include "cudagrad/init.hpp"
#include "cudagrad/nn/layers.hpp"
#include "cudagrad/nn/module.hpp"
#include "cudagrad/nn/resnet.hpp"
#include "cudagrad/ops.hpp"
#include "cudagrad/optim.hpp"
#include "cudagrad/random.hpp"
#include "cudagrad/serialize.hpp"
#include "cudagrad/tensor.hpp"
#include "cudagrad/threads.hpp"
