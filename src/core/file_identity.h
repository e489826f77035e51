// Which file, and which version of it: device, inode, size and modification time. Two identities
// are equal when nothing the kernel records about the file's contents changed in between (a write,
// a truncation, a replacement by another file). Used to tell that a mapped model file, or the file a
// reload reads, is still the one first read (src/embed/embedder.cpp).
//
// Limits: the modification time is kept at the kernel's clock tick (a few ms on Linux before 6.13's
// fine-grained timestamps), so a same-size write landing in the same tick as the file's previous
// change, before the identity was taken, can go unseen; and a writer that sets the old mtime back
// (utimes, touch -d) after a same-size write is not seen. The change time (ctime) would catch that
// but also changes when the file is merely renamed over, linked or chmod'ed, which must not stop a
// running model, so it is not compared.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace leanembed {

struct FileIdentity {
  std::uint64_t device = 0, inode = 0, size = 0;
  std::int64_t mtime_ns = 0;
  bool operator==(const FileIdentity&) const = default;
};

// fstat of an open descriptor. Throws Error(io) naming `path` if fstat fails.
FileIdentity identity_of_descriptor(int fd, const std::string& path);
// stat of a path (symlinks followed); nullopt when it cannot be stat'ed (removed, no permission).
std::optional<FileIdentity> identity_of_path(const std::string& path);
// What differs, for messages: "its size went from 8261771 to 2065442 bytes", "it was replaced by
// another file (inode 12 -> 15)", "it was modified (same size, new modification time)", "it was
// removed or cannot be read".
std::string describe_change(const FileIdentity& was, const std::optional<FileIdentity>& now);

}  // namespace leanembed
