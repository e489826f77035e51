// Reading a safetensors file (https://huggingface.co/docs/safetensors — the format Hugging Face
// repositories, sentence-transformers and Brainy 7 ship weights in): the file memory-mapped
// read-only, every tensor a zero-copy view of its bytes.
//
// The format: an 8-byte little-endian unsigned header length N, N bytes of UTF-8 JSON (an object;
// writers pad it with spaces), then the data buffer. Each header key but "__metadata__" is a tensor
// name mapping to {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, offsets relative to
// the data buffer; "__metadata__", when present, maps strings to strings.
//
// Validation (every failure is Error(model_format) naming the file, the tensor and what is wrong):
//   - the file holds the 8 length bytes; N <= kMaxHeaderBytes (100 MB) and 8 + N <= file size;
//   - the header is JSON, an object at the top, no key twice, nested at most 4 levels;
//   - per tensor: a known dtype string, a shape of non-negative integers, data_offsets two
//     non-negative integers begin <= end; end - begin == elements x dtype size, both products
//     overflow-checked; the tensor ends inside the data buffer;
//   - the tensors cover the data buffer exactly: sorted by offset, each begins where the one before
//     ends (no gap, no overlap), the first at 0, the last at the buffer's end;
//   - "__metadata__" is an object of strings.
// Unknown fields inside a tensor entry are ignored (as the reference implementation does).
//
// Alignment: views start wherever the file puts them (writers align the data buffer to 8 bytes, but
// nothing in the format guarantees it); consumers read them with memcpy-based loads.
// Memory: the mapping (pages come in as they are read, shared with the page cache) plus the parsed
// header: one Tensor per entry (names, shapes) and the metadata strings — O(header bytes).
// Threading: a File is immutable after construction; its views may be read from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/mapped_file.h"

namespace leanembed::safetensors {

constexpr std::size_t kMaxHeaderBytes = 100'000'000;  // what the reference implementation accepts

// Element types the format defines.
enum class Dtype { BOOL, U8, I8, F8_E5M2, F8_E4M3, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64 };
const char* dtype_name(Dtype dtype) noexcept;  // "F32" ...: the header's spelling
std::size_t dtype_size(Dtype dtype) noexcept;  // bytes per element

struct Tensor {
  std::string name;
  Dtype dtype = Dtype::F32;
  std::vector<int64_t> shape;        // empty = a scalar (one element)
  std::span<const std::byte> bytes;  // elements little-endian, row-major; a view of the file
  std::size_t file_offset = 0;       // where `bytes` begins in the file (for pread)

  int64_t numel() const;             // product of the shape (validated not to overflow)
};

class File {
 public:
  // Maps `path` and validates it. Throws Error(io) if it cannot be opened or mapped,
  // Error(model_format) if it is not a valid safetensors file.
  static std::shared_ptr<const File> open(const std::string& path);
  // Validates `bytes` (a whole file's contents, which must outlive the result); `name` is used in
  // messages and as path(). Same errors as open() but never Error(io). For tests and the fuzzer.
  static File parse(std::span<const std::byte> bytes, const std::string& name);

  const std::string& path() const { return path_; }
  std::span<const std::byte> bytes() const { return bytes_; }  // the whole file
  // True when bytes() is this object's read-only mapping of path() (open()), false for parse()'s
  // caller-owned bytes: only then may consumers unmap pages of it (core's unmap_file_pages) or
  // read the same bytes from path() with pread.
  bool mapped() const { return mapping_.size() > 0; }
  // The mapping (open()): its identity, changes() and the descriptor's reader (core/mapped_file.h).
  const MappedFile& mapping() const { return mapping_; }
  std::size_t header_bytes() const { return header_bytes_; }   // N
  std::size_t data_offset() const { return 8 + header_bytes_; } // the data buffer's place in the file

  const std::vector<Tensor>& tensors() const { return tensors_; }  // sorted by name
  const Tensor* find(std::string_view name) const;                // null when absent
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  File() = default;
  MappedFile mapping_;  // empty when parsed from a caller's bytes
  std::string path_;
  std::span<const std::byte> bytes_;
  std::size_t header_bytes_ = 0;
  std::vector<Tensor> tensors_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace leanembed::safetensors
