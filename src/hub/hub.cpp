#include "hub/hub.h"

#include <fcntl.h>
#include <strings.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "hub/http_get.h"
#include "leanembed/error.h"

namespace fs = std::filesystem;

namespace leanembed::hub {
namespace {

constexpr const char* kDefaultEndpoint = "https://huggingface.co";
constexpr const char* kLockFile = ".leanembed-hub.lock";
constexpr const char* kAbsentFile = ".leanembed-hub-absent";
constexpr const char* kIncomplete = ".incomplete";

// Small metadata files, fetched when the hub has them (in this order; the tokenizer and the model
// file come last, so a folder holding the model file went through a whole session).
constexpr const char* kMetadataFiles[] = {"config.json", "tokenizer_config.json", "modules.json",
                                          "sentence_bert_config.json", "config_sentence_transformers.json"};

// A hub name: letters, digits, '-', '_', '.', '/' between parts; no empty, "." or ".." part.
bool plain_name(const std::string& s) {
  if (s.empty() || s.size() > 256 || s.front() == '/' || s.back() == '/') return false;
  for (char c : s) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == '/')) return false;
  }
  std::istringstream parts(s);
  for (std::string part; std::getline(parts, part, '/');) {
    if (part.empty() || part == "." || part == ".." || part.front() == '.') return false;
  }
  return true;
}

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

// encodeURIComponent, as transformers.js encodes the revision ("refs/pr/1" → "refs%2Fpr%2F1").
std::string encode_component(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || std::strchr("-_.!~*'()", c)) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string replace_all(std::string s, const std::string& what, const std::string& with) {
  if (what.empty()) return s;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + with.size())) s.replace(at, what.size(), with);
  return s;
}

std::set<std::string> read_absent(const fs::path& folder) {
  std::set<std::string> names;
  std::ifstream in(folder / kAbsentFile);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) names.insert(line);
  return names;
}

void fsync_path(const fs::path& p, int flags) {
  const int fd = ::open(p.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

void write_absent(const fs::path& folder, const std::set<std::string>& names) {
  const fs::path final = folder / kAbsentFile;
  const fs::path temp = folder / (std::string(kAbsentFile) + kIncomplete);
  {
    std::ofstream out(temp, std::ios::trunc);
    for (const auto& n : names) out << n << '\n';
    if (!out) throw Error(ErrorCode::io, "cannot write '" + temp.string() + "'");
  }
  std::error_code ec;
  fs::rename(temp, final, ec);
  if (ec) throw Error(ErrorCode::io, "cannot rename '" + temp.string() + "' to '" + final.string() + "': " + ec.message());
}

// The model file to use is there: the first candidate present, every earlier one known to be absent on the hub.
bool model_ready(const fs::path& folder, const std::vector<std::string>& candidates, const std::set<std::string>& absent) {
  if (candidates.empty()) return true;
  for (const auto& c : candidates) {
    if (is_file(folder / c)) return true;
    if (!absent.count(c)) return false;
  }
  return false;
}

bool tokenizer_ready(const fs::path& folder, const std::set<std::string>& absent) {
  return is_file(folder / "tokenizer.json") || (absent.count("tokenizer.json") && is_file(folder / "vocab.txt"));
}

// flock on <folder>/.leanembed-hub.lock, held for the object's life.
class FolderLock {
 public:
  FolderLock(const fs::path& folder, const std::string& model, const FetchOptions& options) {
    const fs::path path = folder / kLockFile;
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw Error(ErrorCode::io, "cannot open the lock file '" + path.string() + "': " + std::strerror(errno));
    if (::flock(fd_, LOCK_EX | LOCK_NB) == 0) return;
    const std::string message = "leanembed: waiting for another process fetching '" + model + "' into '" +
                                folder.string() + "' (lock '" + path.string() + "')";
    if (options.on_wait) {
      options.on_wait(message);
    } else if (::isatty(STDERR_FILENO)) {
      std::fprintf(stderr, "%s\n", message.c_str());
    }
    while (::flock(fd_, LOCK_EX) != 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd_);
      throw Error(ErrorCode::io, "cannot lock '" + path.string() + "': " + std::strerror(err));
    }
  }
  ~FolderLock() { ::close(fd_); }  // closing releases the lock
  FolderLock(const FolderLock&) = delete;
  FolderLock& operator=(const FolderLock&) = delete;

 private:
  int fd_ = -1;
};

struct Source {
  std::string id, revision, endpoint, token;
  const char* token_from = "";  // "token" or "HF_TOKEN", for messages
  std::string base;             // {endpoint}/{id}/resolve/{revision}/
  std::string url(const std::string& file) const { return base + file; }
};

// One fetch session: runs with the folder's lock held.
class Session {
 public:
  Session(const Source& source, fs::path folder, const FetchOptions& options)
      : src_(source), folder_(std::move(folder)), options_(options) {}

  enum class Outcome { fetched, absent };

  // GETs `file` into <file>.incomplete; on 2xx, renames it (commit) or leaves it for commit().
  Outcome download(const std::string& file, bool commit_now = true) {
    const fs::path final = folder_ / file;
    const fs::path temp = final.string() + kIncomplete;
    std::error_code ec;
    fs::create_directories(final.parent_path(), ec);
    if (ec) throw Error(ErrorCode::io, "cannot create the folder '" + final.parent_path().string() + "': " + ec.message());
    HttpSettings settings;
    settings.token = src_.token;
    settings.connect_timeout_seconds = options_.connect_timeout_seconds;
    settings.stall_timeout_seconds = options_.stall_timeout_seconds;
    if (::isatty(STDERR_FILENO)) settings.progress_label = file;
    const std::string url = src_.url(file);
    HttpResult r;
    try {
      r = http_get_to_file(url, temp.string(), settings);
    } catch (const Error& e) {
      fs::remove(temp, ec);
      throw Error(e.code(), hide_token(e.what()));
    }
    if (r.status >= 200 && r.status < 300) {
      fsync_path(temp, O_RDONLY);
      if (commit_now) commit(file);
      return Outcome::fetched;
    }
    fs::remove(temp, ec);
    const std::string hub_says = r.error_message.empty() ? std::string() : " (the hub says: " + r.error_message + ")";
    if (r.status == 401 || r.status == 403) {
      const std::string token_part =
          src_.token.empty() ? std::string("no token was sent: if the model is private or gated, set HF_TOKEN (or ModelLocation::token) "
                                           "to a token of an account that has access")
                             : std::string("the token sent (from ") + src_.token_from +
                                   ") was refused: it is wrong or expired, or its account has no access to this model";
      throw Error(ErrorCode::io, hide_token("the hub refused access to '" + url + "' (HTTP " + std::to_string(r.status) + ")" +
                                            hub_says + ": " + token_part + ". A model that does not exist is also refused this way."));
    }
    if (r.status == 404) {
      if (r.error_code == "RepoNotFound") {
        throw Error(ErrorCode::io, hide_token("model '" + src_.id + "' does not exist on " + src_.endpoint +
                                              " (or it is private: set HF_TOKEN); asked for '" + url + "'" + hub_says));
      }
      if (r.error_code == "RevisionNotFound") {
        throw Error(ErrorCode::io, hide_token("revision '" + src_.revision + "' of model '" + src_.id + "' does not exist on " +
                                              src_.endpoint + "; asked for '" + url + "'" + hub_says));
      }
      return Outcome::absent;
    }
    throw Error(ErrorCode::io, hide_token("download of '" + url + "' failed: the server answered HTTP " + std::to_string(r.status) +
                                          hub_says + "; nothing was kept"));
  }

  void commit(const std::string& file) {
    const fs::path final = folder_ / file;
    const fs::path temp = final.string() + kIncomplete;
    std::error_code ec;
    fs::rename(temp, final, ec);
    if (ec) throw Error(ErrorCode::io, "cannot rename '" + temp.string() + "' to '" + final.string() + "': " + ec.message());
    fsync_path(final.parent_path(), O_RDONLY | O_DIRECTORY);
  }

  void discard(const std::string& file) {
    std::error_code ec;
    fs::remove(folder_ / (file + kIncomplete), ec);
  }

  // An optional file: fetched unless present or known absent; a 404 is remembered.
  void optional(const std::string& file) {
    if (is_file(folder_ / file) || absent_.count(file)) return;
    if (download(file) == Outcome::absent) newly_absent_.insert(file);
  }

  void run(const std::vector<std::string>& model_files) {
    absent_ = read_absent(folder_);
    for (const char* f : kMetadataFiles) {
      optional(f);
      if (std::string(f) == "modules.json") pooling_configs();
    }
    if (!tokenizer_ready(folder_, absent_)) {
      if (!is_file(folder_ / "tokenizer.json") && download("tokenizer.json") == Outcome::absent) {
        newly_absent_.insert("tokenizer.json");
        if (!is_file(folder_ / "vocab.txt") && download("vocab.txt") == Outcome::absent) {
          throw Error(ErrorCode::io, "model '" + src_.id + "' at revision '" + src_.revision +
                                         "' has no tokenizer: neither tokenizer.json nor vocab.txt exist ('" +
                                         src_.url("tokenizer.json") + "' and '" + src_.url("vocab.txt") + "' answered 404)");
        }
        optional("special_tokens_map.json");
      }
    }
    std::set<std::string> known_absent = absent_;
    known_absent.insert(newly_absent_.begin(), newly_absent_.end());
    if (!model_ready(folder_, model_files, known_absent)) fetch_model_file(model_files);
    if (!newly_absent_.empty()) {
      std::set<std::string> all = read_absent(folder_);
      all.insert(newly_absent_.begin(), newly_absent_.end());
      write_absent(folder_, all);
    }
  }

 private:
  // The first model file the hub has (re-asked even when remembered absent: this session runs
  // because no usable one is here), with its external data; committed last.
  void fetch_model_file(const std::vector<std::string>& model_files) {
    std::string urls;
    for (const auto& file : model_files) {
      if (is_file(folder_ / file)) return;
      if (download(file, /*commit_now=*/false) == Outcome::absent) {
        newly_absent_.insert(file);
        urls += "\n  " + src_.url(file);
        continue;
      }
      try {
        if (file.ends_with(".onnx")) optional(file + "_data");
        commit(file);
      } catch (...) {
        discard(file);
        throw;
      }
      return;
    }
    throw Error(ErrorCode::io, "model '" + src_.id + "' at revision '" + src_.revision +
                                   "' has no such model file on " + src_.endpoint + " (each answered 404):" + urls +
                                   "\nthe repository may not have an ONNX export for this dtype: choose another --dtype "
                                   "(ModelLocation::dtype) or --model-file");
  }

  // The Pooling module's config.json, at the path modules.json gives (usually 1_Pooling/).
  void pooling_configs() {
    const fs::path modules = folder_ / "modules.json";
    if (!is_file(modules)) return;
    std::ifstream in(modules);
    const nlohmann::json list = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (!list.is_array()) return;  // model_folder reports a malformed modules.json
    for (const auto& mod : list) {
      if (!mod.is_object()) continue;
      const auto type = mod.find("type"), path = mod.find("path");
      if (type == mod.end() || !type->is_string() || path == mod.end() || !path->is_string()) continue;
      const std::string p = path->get<std::string>();
      if (type->get<std::string>().ends_with(".Pooling") && plain_name(p)) optional(p + "/config.json");
    }
  }

  std::string hide_token(std::string message) const { return replace_all(std::move(message), src_.token, "***"); }

  const Source& src_;
  fs::path folder_;
  const FetchOptions& options_;
  std::set<std::string> absent_, newly_absent_;
};

std::string offline_reason(const ModelLocation& where) {
  if (where.local_files_only) return "local_files_only / --offline";
  if (env_flag("LEANEMBED_OFFLINE")) return "LEANEMBED_OFFLINE=" + std::string(std::getenv("LEANEMBED_OFFLINE"));
  if (env_flag("HF_HUB_OFFLINE")) return "HF_HUB_OFFLINE=" + std::string(std::getenv("HF_HUB_OFFLINE"));
  return "";
}

Error offline_error(const Source& src, const fs::path& folder, const std::vector<std::string>& model_files,
                    const std::string& reason) {
  const std::set<std::string> absent = read_absent(folder);
  std::string needed;
  if (!tokenizer_ready(folder, absent)) needed += "\n  " + src.url("tokenizer.json");
  if (!model_ready(folder, model_files, absent)) {
    bool first = true;
    for (const auto& f : model_files) {
      if (absent.count(f)) continue;
      needed += (first ? "\n  " : "\n    (or, if the hub has no such file) ") + src.url(f);
      first = false;
    }
  }
  std::string optional;
  for (const char* f : kMetadataFiles)
    if (!is_file(folder / f)) optional += std::string(optional.empty() ? "" : ", ") + f;
  if (!is_file(folder / "modules.json")) optional += std::string(optional.empty() ? "" : ", ") + "1_Pooling/config.json";
  return Error(ErrorCode::io,
               "model '" + src.id + "' (revision " + src.revision + ") is not complete in the model cache folder and downloads are off (" +
                   reason + "). Fetch into '" + folder.string() + "/', keeping each file's relative name:" + needed +
                   (optional.empty() ? std::string()
                                     : "\nand, where the model has them (same URL form, " + src.base + "<file>): " + optional) +
                   "\nor allow downloads (without --offline / local_files_only, LEANEMBED_OFFLINE and HF_HUB_OFFLINE unset).");
}

}  // namespace

bool env_flag(const char* name) {
  const char* v = std::getenv(name);
  if (!v) return false;
  for (const char* yes : {"1", "true", "yes", "on"})
    if (strcasecmp(v, yes) == 0) return true;
  return false;
}

fs::path hub_model_folder(const std::string& cache_dir, const std::string& id, const std::string& revision) {
  if (!plain_name(id) || std::count(id.begin(), id.end(), '/') != 1) {
    throw Error(ErrorCode::invalid_argument, "'" + id + "' is not a Hugging Face model id (expected owner/name: letters, digits, "
                                             "'-', '_', '.')");
  }
  if (!revision.empty() && !plain_name(revision)) {
    throw Error(ErrorCode::invalid_argument, "revision '" + revision + "' is not a branch, tag or commit name (letters, digits, "
                                             "'-', '_', '.', '/'; no '..')");
  }
  fs::path folder = fs::path(cache_dir) / id;
  if (!revision.empty() && revision != "main") folder /= revision;
  return folder;
}

fs::path fetch_model(const ModelLocation& where, const std::string& cache_dir, const std::vector<std::string>& model_files,
                     const FetchOptions& options) {
  Source src;
  src.id = where.model;
  src.revision = where.revision.empty() ? "main" : where.revision;
  const fs::path folder = hub_model_folder(cache_dir, src.id, src.revision);
  for (const auto& f : model_files) {
    if (!plain_name(f)) throw Error(ErrorCode::invalid_argument, "model file '" + f + "' is not a relative file name in the repository");
  }
  if (tokenizer_ready(folder, read_absent(folder)) && model_ready(folder, model_files, read_absent(folder))) return folder;

  src.endpoint = where.endpoint;
  if (src.endpoint.empty()) {
    const char* env = std::getenv("HF_ENDPOINT");
    src.endpoint = env && *env ? env : kDefaultEndpoint;
  }
  while (!src.endpoint.empty() && src.endpoint.back() == '/') src.endpoint.pop_back();
  src.token = where.token;
  src.token_from = "ModelLocation::token";
  if (src.token.empty()) {
    const char* env = std::getenv("HF_TOKEN");
    if (env) src.token = env;
    src.token_from = "HF_TOKEN";
  }
  src.base = src.endpoint + "/" + src.id + "/resolve/" + encode_component(src.revision) + "/";

  if (const std::string reason = offline_reason(where); !reason.empty()) throw offline_error(src, folder, model_files, reason);

  std::error_code ec;
  fs::create_directories(folder, ec);
  if (ec) throw Error(ErrorCode::io, "cannot create the model folder '" + folder.string() + "': " + ec.message());
  FolderLock lock(folder, src.id, options);
  // Another process may have fetched it while this one waited: what is there is not fetched again.
  if (tokenizer_ready(folder, read_absent(folder)) && model_ready(folder, model_files, read_absent(folder))) return folder;
  if (::isatty(STDERR_FILENO)) {
    std::fprintf(stderr, "leanembed: fetching '%s' (revision %s) from %s into '%s'\n", src.id.c_str(), src.revision.c_str(),
                 src.endpoint.c_str(), folder.c_str());
  }
  Session(src, folder, options).run(model_files);
  return folder;
}

}  // namespace leanembed::hub
