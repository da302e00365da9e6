// Saving and loading tensors in the safetensors format (https://github.com/huggingface/safetensors),
// the format PyTorch, JAX and the Hugging Face hub exchange weights in.
//
// File layout:
//   bytes 0..8       N, the header length, a little-endian unsigned 64-bit integer
//   bytes 8..8+N     a UTF-8 JSON object, padded with spaces to a multiple of 8 bytes:
//                      {"conv1.weight": {"dtype": "F32", "shape": [64, 3, 7, 7], "data_offsets": [0, 37632]},
//                       ..., "__metadata__": {"epoch": "3"}}
//   bytes 8+N..end   the tensors' raw little-endian bytes, row-major; data_offsets are [begin, end)
//                    relative to the start of this section, and together tile it without gaps
// Supported element types: F32, F64, I64 (cudagrad's DTypes). Metadata maps strings to strings.
#pragma once

#include <map>
#include <string>

#include "cudagrad/tensor.hpp"

namespace cudagrad {

struct TensorFile {
    std::map<std::string, Tensor> tensors;           // on the CPU, contiguous, requires_grad false
    std::map<std::string, std::string> metadata;     // the "__metadata__" object, empty if absent
};

// Reads and validates a whole file. Throws cudagrad::Error naming the file and the problem:
// a missing or unreadable file, a truncated file, malformed JSON (with its byte position), an
// unsupported dtype (naming the tensor), offsets that fall outside the data, overlap, leave a
// gap, or disagree with shape x element size, and duplicate names.
TensorFile load_safetensors(const std::string& path);

// Writes the tensors (any layout; saved contiguous) and metadata. The write is atomic: the bytes
// go to "<path>.tmp.<pid>", are flushed to disk, and the temporary file is then renamed over
// `path`. If anything fails the temporary file is removed and an existing file at `path` is left
// as it was. The name "__metadata__" is reserved and cannot name a tensor.
void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace cudagrad
