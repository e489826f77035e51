#include "runtime/encoder/row_source.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/mapped_file.h"
#include "leanembed/error.h"

namespace leanembed::runtime::encoder {

bool attach_row_source(EmbeddingTable& table, int64_t hidden, std::shared_ptr<const FileReader> reader,
                       std::size_t file_size, std::size_t offset) {
  if (!reader || table.empty() || hidden <= 0) return false;
  const std::size_t bytes = static_cast<std::size_t>(table.size) * table.element_bytes();
  const std::size_t row = std::min(bytes, static_cast<std::size_t>(hidden) * table.element_bytes());
  try {
    if (reader->size() != file_size || offset > file_size || bytes > file_size - offset) return false;
    std::vector<std::byte> got(row);
    for (std::size_t at : {std::size_t{0}, bytes - row}) {
      reader->read(offset + at, got);
      if (std::memcmp(got.data(), table.bytes + at, row) != 0) return false;
    }
    table.row_source = std::move(reader);
    table.row_source_offset = offset;
    return true;
  } catch (const Error&) {
    return false;  // the file can no longer be read (truncated ...): keep the view
  }
}

bool attach_model_row_source(EmbeddingTable& table, int64_t hidden, const onnx::Model& model) {
  if (!model.file_backed || table.empty() || hidden <= 0) return false;
  const auto file_begin = reinterpret_cast<std::uintptr_t>(model.file_bytes.data());
  const auto table_begin = reinterpret_cast<std::uintptr_t>(table.bytes);
  const std::size_t bytes = static_cast<std::size_t>(table.size) * table.element_bytes();
  if (table_begin < file_begin || table_begin - file_begin > model.file_bytes.size() ||
      bytes > model.file_bytes.size() - (table_begin - file_begin))
    return false;
  const auto& mapped = model.source_files.empty() ? nullptr : model.source_files.front();
  if (!mapped || mapped->size() != model.file_bytes.size() || mapped->bytes().data() != model.file_bytes.data()) return false;
  return attach_row_source(table, hidden, std::shared_ptr<const FileReader>(mapped, &mapped->reader()), model.file_bytes.size(),
                           table_begin - file_begin);
}

}  // namespace leanembed::runtime::encoder
