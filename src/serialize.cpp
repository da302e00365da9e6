// safetensors reading and writing (the layout is drawn in include/cudagrad/serialize.hpp).
//
// Reference: the huggingface/safetensors Rust crate (files are checked against it both ways).
// Like it we require a header of at most 100 MB that is one JSON object; tensor entries with
// dtype, shape and data_offsets; offsets that tile the data section from 0 to its end with no
// gap or overlap; and an optional "__metadata__" object of string values. We also reject
// unknown fields in a tensor entry, where a misspelt field would otherwise pass unnoticed.
// Speed: loading is one pread per tensor straight into the tensor's storage and saving one write
// per tensor, so both run at disk (or page-cache memcpy) speed; the header is a few hundred bytes
// per tensor. The fsync in save dominates small files (milliseconds) and is the price of a
// checkpoint that survives a crash.
// POSIX calls (open, pread, fsync, rename) rather than iostreams: we need fsync and errno.
#include "cudagrad/serialize.hpp"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <optional>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include "json.hpp"

namespace cudagrad {

// The data section is copied byte for byte into tensors, which is right only on a
// little-endian machine (every platform cudagrad targets).
static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian");

namespace {

constexpr const char* load_op = "load_safetensors";
constexpr const char* save_op = "save_safetensors";
constexpr std::uint64_t maximum_header_bytes = 100'000'000;  // the reference implementation's limit
constexpr const char* metadata_key = "__metadata__";
constexpr std::uint64_t maximum_transfer = std::uint64_t{1} << 30;  // per read/write call; Linux caps one near 2 GB

std::optional<DType> dtype_from_code(const std::string& code) {
    if (code == "F32") return DType::Float32;
    if (code == "F64") return DType::Float64;
    if (code == "I64") return DType::Int64;
    return std::nullopt;
}

const char* code_of(DType dtype) {
    switch (dtype) {
        case DType::Float32: return "F32";
        case DType::Float64: return "F64";
        case DType::Int64: return "I64";
    }
    fail(save_op, "dtype ", dtype_name(dtype), " has no safetensors code");
}

// Closes a file descriptor when it goes out of scope, so that every error path releases it.
class FileDescriptor {
public:
    explicit FileDescriptor(int descriptor) : descriptor_(descriptor) {}
    ~FileDescriptor() { close(); }
    FileDescriptor(const FileDescriptor&) = delete;
    FileDescriptor& operator=(const FileDescriptor&) = delete;
    int get() const { return descriptor_; }
    int close() {  // returns ::close's result, so a failed final flush can be reported
        int result = descriptor_ >= 0 ? ::close(descriptor_) : 0;
        descriptor_ = -1;
        return result;
    }

private:
    int descriptor_;
};

std::string quoted_path(const std::string& path) { return "'" + path + "'"; }

// Reads exactly `bytes` at `offset`; a short read means the file shrank under us.
void read_exactly(int descriptor, void* destination, std::uint64_t bytes, std::uint64_t offset, const std::string& path) {
    char* out = static_cast<char*>(destination);
    while (bytes > 0) {
        ssize_t got = ::pread(descriptor, out, std::min(bytes, maximum_transfer), static_cast<off_t>(offset));
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) fail(load_op, "cannot read ", quoted_path(path), ": ", std::strerror(errno));
        if (got == 0) fail(load_op, quoted_path(path), " ended early at byte ", offset, " (truncated while being read?)");
        out += got;
        bytes -= static_cast<std::uint64_t>(got);
        offset += static_cast<std::uint64_t>(got);
    }
}

struct Entry {
    std::string name;
    DType dtype = DType::Float32;
    Shape shape;
    std::uint64_t begin = 0, end = 0;  // relative to the data section
};

// Validates one tensor entry of the header; `data_bytes` is the size of the data section.
Entry parse_entry(const std::string& name, const json::Value& value, std::uint64_t data_bytes, const std::string& path) {
    const std::string where = quoted_path(path) + ": tensor '" + name + "'";
    check(value.is_object(), load_op, where, " must be described by a JSON object, found ", json::kind_name(value.kind));
    const json::Value* dtype_value = nullptr;
    const json::Value* shape_value = nullptr;
    const json::Value* offsets_value = nullptr;
    for (const auto& [field, field_value] : value.object) {
        if (field == "dtype") dtype_value = &field_value;
        else if (field == "shape") shape_value = &field_value;
        else if (field == "data_offsets") offsets_value = &field_value;
        else fail(load_op, where, " has an unexpected field ", json::quote(field));
    }
    check(dtype_value && shape_value && offsets_value, load_op, where,
          " needs the fields \"dtype\", \"shape\" and \"data_offsets\"");

    Entry entry;
    entry.name = name;
    check(dtype_value->is_string(), load_op, where, ": \"dtype\" must be a string");
    std::optional<DType> dtype = dtype_from_code(dtype_value->string);
    check(dtype.has_value(), load_op, where, " has dtype ", json::quote(dtype_value->string),
          ", which cudagrad does not support (supported: F32, F64, I64)");
    entry.dtype = *dtype;

    check(shape_value->is_array(), load_op, where, ": \"shape\" must be an array of integers");
    std::uint64_t numel = 1;
    bool overflow = false;
    for (const json::Value& size : shape_value->array) {
        check(size.is_integer() && size.integer >= 0, load_op, where,
              ": \"shape\" must hold non-negative integers, found ",
              size.is_integer() ? std::to_string(size.integer) : std::string(json::kind_name(size.kind)));
        entry.shape.push_back(size.integer);
        std::uint64_t next = numel * static_cast<std::uint64_t>(size.integer);
        if (size.integer != 0 && next / static_cast<std::uint64_t>(size.integer) != numel) overflow = true;
        numel = next;
    }
    std::uint64_t element_bytes = element_size(entry.dtype);
    check(!overflow && numel <= UINT64_MAX / element_bytes, load_op, where, " of shape ", shape_string(entry.shape),
          " would need more than 2^64 bytes");

    check(offsets_value->is_array() && offsets_value->array.size() == 2 && offsets_value->array[0].is_integer() &&
              offsets_value->array[1].is_integer() && offsets_value->array[0].integer >= 0 &&
              offsets_value->array[1].integer >= 0,
          load_op, where, ": \"data_offsets\" must be two non-negative integers [begin, end]");
    entry.begin = static_cast<std::uint64_t>(offsets_value->array[0].integer);
    entry.end = static_cast<std::uint64_t>(offsets_value->array[1].integer);
    std::string offsets = "[";
    offsets.append(std::to_string(entry.begin)).append(", ").append(std::to_string(entry.end)).append("]");
    check(entry.begin <= entry.end, load_op, where, " has data_offsets ", offsets, " that end before they begin");
    check(entry.end <= data_bytes, load_op, where, " has data_offsets ", offsets,
          " past the end of the data section (", data_bytes, " bytes)");
    check(entry.end - entry.begin == numel * element_bytes, load_op, where, " has dtype ", dtype_value->string,
          " and shape ", shape_string(entry.shape), ", which need ", numel * element_bytes,
          " bytes, but its data_offsets ", offsets, " span ", entry.end - entry.begin);
    return entry;
}

// The tensors must tile [0, data_bytes) exactly, as the reference implementation requires: an
// overlap means two tensors would share bytes, a gap or a tail means the file is not what its
// header says.
void check_tiling(std::vector<Entry>& entries, std::uint64_t data_bytes, const std::string& path) {
    std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
        return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
    });
    std::uint64_t covered = 0;
    const Entry* previous = nullptr;
    for (const Entry& entry : entries) {
        check(entry.begin >= covered, load_op, quoted_path(path), ": tensor '", entry.name, "' (bytes ", entry.begin,
              " to ", entry.end, ") overlaps tensor '", previous ? previous->name : "", "' (bytes ",
              previous ? previous->begin : 0, " to ", covered, ")");
        check(entry.begin == covered, load_op, quoted_path(path), ": bytes ", covered, " to ", entry.begin,
              " of the data section belong to no tensor");
        covered = entry.end;
        previous = &entry;
    }
    check(covered == data_bytes, load_op, quoted_path(path), ": the data section holds ", data_bytes,
          " bytes but the tensors cover only ", covered);
}

}  // namespace

TensorFile load_safetensors(const std::string& path) {
    FileDescriptor file(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    check(file.get() >= 0, load_op, "cannot open ", quoted_path(path), ": ", std::strerror(errno));
    struct stat status {};
    check(::fstat(file.get(), &status) == 0, load_op, "cannot stat ", quoted_path(path), ": ", std::strerror(errno));
    check(S_ISREG(status.st_mode), load_op, quoted_path(path), " is not a regular file");
    const std::uint64_t file_bytes = static_cast<std::uint64_t>(status.st_size);
    check(file_bytes >= 8, load_op, quoted_path(path), " is ", file_bytes,
          " bytes long, too short for the 8-byte header length");

    unsigned char length_bytes[8];
    read_exactly(file.get(), length_bytes, 8, 0, path);
    std::uint64_t header_bytes = 0;
    for (int i = 7; i >= 0; --i) header_bytes = (header_bytes << 8) | length_bytes[i];
    check(header_bytes <= file_bytes - 8, load_op, quoted_path(path), " declares a header of ", header_bytes,
          " bytes, but only ", file_bytes - 8, " bytes follow the length (file size ", file_bytes, ")");
    check(header_bytes <= maximum_header_bytes, load_op, quoted_path(path), " declares a header of ", header_bytes,
          " bytes, more than the ", maximum_header_bytes, "-byte limit");

    std::string header(header_bytes, '\0');
    read_exactly(file.get(), header.data(), header_bytes, 8, path);
    json::Value root = json::parse(header, load_op, "the header of " + quoted_path(path));
    check(root.is_object(), load_op, quoted_path(path), ": the header must be a JSON object, found ",
          json::kind_name(root.kind));

    const std::uint64_t data_start = 8 + header_bytes;
    const std::uint64_t data_bytes = file_bytes - data_start;
    TensorFile result;
    std::vector<Entry> entries;
    for (const auto& [name, value] : root.object) {
        if (name == metadata_key) {
            check(value.is_object(), load_op, quoted_path(path), ": \"__metadata__\" must be an object of strings");
            for (const auto& [key, text] : value.object) {
                check(text.is_string(), load_op, quoted_path(path), ": metadata ", json::quote(key),
                      " must be a string, found ", json::kind_name(text.kind));
                result.metadata[key] = text.string;
            }
            continue;
        }
        entries.push_back(parse_entry(name, value, data_bytes, path));
    }
    check_tiling(entries, data_bytes, path);

    for (const Entry& entry : entries) {
        Tensor tensor = Tensor::empty(entry.shape, entry.dtype);
        if (entry.end > entry.begin) {
            read_exactly(file.get(), tensor.raw_data(), entry.end - entry.begin, data_start + entry.begin, path);
        }
        result.tensors.emplace(entry.name, std::move(tensor));
    }
    return result;
}

namespace {

void write_all(int descriptor, const void* source, std::uint64_t bytes, const std::string& temporary) {
    const char* in = static_cast<const char*>(source);
    while (bytes > 0) {
        ssize_t written = ::write(descriptor, in, std::min(bytes, maximum_transfer));
        if (written < 0 && errno == EINTR) continue;
        check(written > 0, save_op, "cannot write ", quoted_path(temporary), ": ", std::strerror(errno));
        in += written;
        bytes -= static_cast<std::uint64_t>(written);
    }
}

// Flushes the directory entry of a renamed file, so that the rename itself survives a crash.
// Best effort: some file systems refuse to fsync a directory, and the data is already safe.
void sync_parent_directory(const std::string& path) {
    std::string::size_type slash = path.find_last_of('/');
    std::string directory = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
    FileDescriptor handle(::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (handle.get() >= 0) ::fsync(handle.get());
}

}  // namespace

void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
    // Everything that can be wrong with the arguments is checked before a file is created.
    std::vector<Tensor> contiguous;
    std::string header = "{";
    if (!metadata.empty()) {
        header += json::quote(metadata_key) + ":{";
        bool first = true;
        for (const auto& [key, text] : metadata) {
            if (!first) header += ',';
            header.append(json::quote(key)).append(":").append(json::quote(text));
            first = false;
        }
        header += "}";
    }
    std::uint64_t offset = 0;
    for (const auto& [name, tensor] : tensors) {
        check(name != metadata_key, save_op, quoted_path(path), ": \"__metadata__\" is reserved and cannot name a tensor");
        check(tensor.defined(), save_op, quoted_path(path), ": tensor '", name, "' is undefined");
        Tensor data = tensor.to(Device::cpu()).contiguous();
        std::uint64_t bytes = static_cast<std::uint64_t>(data.numel()) * element_size(data.dtype());
        std::string shape;
        for (std::int64_t size : data.shape()) {
            if (!shape.empty()) shape += ',';
            shape += std::to_string(size);
        }
        if (header.size() > 1) header += ',';
        header.append(json::quote(name)).append(":{\"dtype\":\"").append(code_of(data.dtype()));
        header.append("\",\"shape\":[").append(shape).append("],\"data_offsets\":[");
        header.append(std::to_string(offset)).append(",").append(std::to_string(offset + bytes)).append("]}");
        offset += bytes;
        contiguous.push_back(std::move(data));
    }
    header += "}";
    header.append((8 - header.size() % 8) % 8, ' ');  // keeps the data section 8-byte aligned
    unsigned char length_bytes[8];
    for (int i = 0; i < 8; ++i) length_bytes[i] = static_cast<unsigned char>(header.size() >> (8 * i));

    const std::string temporary = path + ".tmp." + std::to_string(::getpid());
    FileDescriptor file(::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    check(file.get() >= 0, save_op, "cannot write ", quoted_path(path), ": cannot create ", quoted_path(temporary), ": ",
          std::strerror(errno));
    try {
        write_all(file.get(), length_bytes, 8, temporary);
        write_all(file.get(), header.data(), header.size(), temporary);
        for (const Tensor& data : contiguous) {
            write_all(file.get(), data.raw_data(), static_cast<std::uint64_t>(data.numel()) * element_size(data.dtype()),
                      temporary);
        }
        check(::fsync(file.get()) == 0, save_op, "cannot flush ", quoted_path(temporary), ": ", std::strerror(errno));
        check(file.close() == 0, save_op, "cannot close ", quoted_path(temporary), ": ", std::strerror(errno));
        check(std::rename(temporary.c_str(), path.c_str()) == 0, save_op, "cannot rename ", quoted_path(temporary),
              " to ", quoted_path(path), ": ", std::strerror(errno));
    } catch (...) {
        file.close();
        ::unlink(temporary.c_str());
        throw;
    }
    sync_parent_directory(path);
}

}  // namespace cudagrad
