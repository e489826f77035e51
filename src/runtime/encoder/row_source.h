// The word table's row source (EmbeddingTable::row_source, encoder_weights.h): the one place the
// fast path's weights are tied to a file, so that the rows a batch needs are read with pread and the
// table costs no resident memory (the page cache keeps what was read, shared and reclaimable).
// The rule: a reader is attached only when the table's bytes are the file's bytes at a known offset,
// checked at attach time (the file's size, and the table's first and last rows read with pread equal
// to the bytes in memory). Any mismatch or error leaves the table a view of memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/file_reader.h"
#include "onnx/model.h"
#include "runtime/encoder/encoder_weights.h"

namespace leanembed::runtime::encoder {

// Attaches `reader` (the model file's own descriptor, e.g. its mapping's: core/mapped_file.h) to
// `table` when the table's bytes (`table.bytes`, size * element bytes) are the file's bytes at
// `offset` in a file of `file_size` bytes. Reads 2 rows. Returns whether it attached.
bool attach_row_source(EmbeddingTable& table, int64_t hidden, std::shared_ptr<const FileReader> reader,
                       std::size_t file_size, std::size_t offset);

// An ONNX model from read_model: attaches the mapped model file's descriptor (Model::source_files,
// the same inode whatever the path names now) when the table's bytes lie wholly inside that
// mapping. External data and copies the reader or a quantizer owns keep the view.
bool attach_model_row_source(EmbeddingTable& table, int64_t hidden, const onnx::Model& model);

}  // namespace leanembed::runtime::encoder
