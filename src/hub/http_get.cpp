#include "hub/http_get.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <strings.h>

#include "leanembed/error.h"

namespace leanembed::hub {
namespace {

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) throw Error(ErrorCode::io, "libcurl could not be initialised");
  });
}

struct Transfer {
  CURL* curl = nullptr;
  int fd = -1;
  std::string file;
  uint64_t bytes = 0;
  int write_errno = 0;
  HttpResult* result = nullptr;
  std::string label;
  std::chrono::steady_clock::time_point last_draw{};
  bool drawn = false;
};

bool success_status(CURL* curl) {
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  return status >= 200 && status < 300;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\r' || s.back() == '\n' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
  std::size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  return s.substr(i);
}

// Header lines of every response on the way (redirects included): the last response's X-Error-* win.
size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::string line(data, size * count);
  if (line.rfind("HTTP/", 0) == 0) {
    t->result->error_code.clear();
    t->result->error_message.clear();
  } else if (const auto colon = line.find(':'); colon != std::string::npos) {
    const std::string name = line.substr(0, colon);
    const std::string value = trim(line.substr(colon + 1)).substr(0, 300);
    if (strcasecmp(name.c_str(), "X-Error-Code") == 0) t->result->error_code = value;
    if (strcasecmp(name.c_str(), "X-Error-Message") == 0) t->result->error_message = value;
  }
  return size * count;
}

size_t on_body(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * count;
  if (!success_status(t->curl)) return n;  // an error page: the caller judges the status, the file stays empty
  size_t done = 0;
  while (done < n) {
    const ssize_t w = ::write(t->fd, data + done, n - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      t->write_errno = errno;
      return 0;  // libcurl stops with CURLE_WRITE_ERROR
    }
    done += static_cast<size_t>(w);
  }
  t->bytes += n;
  return n;
}

int on_progress(void* user, curl_off_t total, curl_off_t now, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  if (t->label.empty() || !success_status(t->curl)) return 0;
  const auto clock = std::chrono::steady_clock::now();
  const bool finished = total > 0 && now >= total;
  if (!finished && t->drawn && clock - t->last_draw < std::chrono::milliseconds(100)) return 0;
  t->last_draw = clock;
  t->drawn = true;
  const std::string line = progress_line(t->label, static_cast<uint64_t>(now), total > 0 ? static_cast<uint64_t>(total) : 0);
  std::fprintf(stderr, "\r%s", line.c_str());
  std::fflush(stderr);
  return 0;
}

std::string megabytes(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return buf;
}

struct CurlHandle {
  CURL* curl = curl_easy_init();
  curl_slist* headers = nullptr;
  ~CurlHandle() {
    if (headers) curl_slist_free_all(headers);
    if (curl) curl_easy_cleanup(curl);
  }
};

}  // namespace

std::string progress_line(const std::string& label, uint64_t done, uint64_t total, int bar_width) {
  std::string line = "  " + label + "  " + megabytes(done);
  if (total == 0) return line + " MB";
  if (done > total) done = total;
  line += " / " + megabytes(total) + " MB [";
  const int filled = static_cast<int>(static_cast<double>(done) / static_cast<double>(total) * bar_width);
  line += std::string(static_cast<size_t>(filled), '#') + std::string(static_cast<size_t>(bar_width - filled), '.');
  char pct[8];
  std::snprintf(pct, sizeof pct, "%3d%%", static_cast<int>(static_cast<double>(done) * 100.0 / static_cast<double>(total)));
  return line + "] " + pct;
}

HttpResult http_get_to_file(const std::string& url, const std::string& file, const HttpSettings& settings) {
  global_init();
  HttpResult result;
  Transfer t;
  t.file = file;
  t.result = &result;
  t.label = settings.progress_label;
  t.fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (t.fd < 0) throw Error(ErrorCode::io, "cannot create '" + file + "': " + std::strerror(errno));
  struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
  } closer{t.fd};

  CurlHandle h;
  if (!h.curl) throw Error(ErrorCode::io, "libcurl could not make a handle");
  CURL* c = h.curl;
  t.curl = c;
  char errbuf[CURL_ERROR_SIZE] = {0};
  const std::string user_agent = "leanembed/0.1.0";
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_USERAGENT, user_agent.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
  // A custom Authorization header goes to the first host only: libcurl drops it when a redirect
  // leads to another host, port or scheme (CURLOPT_UNRESTRICTED_AUTH stays off), as huggingface_hub does.
  curl_easy_setopt(c, CURLOPT_UNRESTRICTED_AUTH, 0L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
  // The system trust store is libcurl's default; the variables curl and OpenSSL users set for
  // another bundle (a company CA) are honoured as the curl tool does.
  if (const char* bundle = std::getenv("CURL_CA_BUNDLE"); bundle && *bundle) {
    curl_easy_setopt(c, CURLOPT_CAINFO, bundle);
  } else if (const char* cert_file = std::getenv("SSL_CERT_FILE"); cert_file && *cert_file) {
    curl_easy_setopt(c, CURLOPT_CAINFO, cert_file);
  }
  if (const char* cert_dir = std::getenv("SSL_CERT_DIR"); cert_dir && *cert_dir) curl_easy_setopt(c, CURLOPT_CAPATH, cert_dir);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, settings.connect_timeout_seconds);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, settings.stall_timeout_seconds);
  if (!settings.token.empty()) {
    const std::string auth = "Authorization: Bearer " + settings.token;
    h.headers = curl_slist_append(h.headers, auth.c_str());
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h.headers);
  }
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  if (!t.label.empty()) {
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
  }

  const CURLcode rc = curl_easy_perform(c);
  if (t.drawn) std::fputc('\n', stderr);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &result.status);
  if (char* effective = nullptr; curl_easy_getinfo(c, CURLINFO_EFFECTIVE_URL, &effective) == CURLE_OK && effective) {
    result.final_url = effective;
  }
  curl_off_t expected = -1;
  curl_easy_getinfo(c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &expected);
  result.bytes = t.bytes;
  const std::string where = "'" + url + "'" + (result.final_url.empty() || result.final_url == url
                                                    ? std::string()
                                                    : " (redirected to '" + result.final_url + "')");
  const std::string of_total = expected >= 0 ? " of " + std::to_string(expected) : std::string();
  const std::string detail = errbuf[0] ? std::string(errbuf) : std::string(curl_easy_strerror(rc));
  switch (rc) {
    case CURLE_OK:
      break;
    case CURLE_WRITE_ERROR:
      throw Error(ErrorCode::io, "download of " + where + ": cannot write '" + file + "': " +
                                     (t.write_errno ? std::strerror(t.write_errno) : detail));
    case CURLE_PARTIAL_FILE:
      throw Error(ErrorCode::io, "download of " + where + " failed: the connection closed after " + std::to_string(t.bytes) +
                                     of_total + " bytes (the body is shorter than its Content-Length); nothing was kept");
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
      throw Error(ErrorCode::io, "download of " + where + " failed: the connection was cut after " + std::to_string(t.bytes) +
                                     of_total + " bytes (" + detail + "); nothing was kept");
    case CURLE_OPERATION_TIMEDOUT:
      throw Error(ErrorCode::io, "download of " + where + " timed out after " + std::to_string(t.bytes) + of_total +
                                     " bytes (" + detail + "; connect timeout " +
                                     std::to_string(settings.connect_timeout_seconds) + " s, stall timeout " +
                                     std::to_string(settings.stall_timeout_seconds) + " s); nothing was kept");
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
      throw Error(ErrorCode::io, "cannot connect to fetch " + where + ": " + detail +
                                     " (no network? set HF_ENDPOINT for a mirror, or work offline with files already in "
                                     "the model cache folder)");
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CONNECT_ERROR:
      throw Error(ErrorCode::io, "TLS failed for " + where + ": " + detail +
                                     " (certificates are verified against the system trust store; CURL_CA_BUNDLE or "
                                     "SSL_CERT_FILE name another CA bundle)");
    case CURLE_TOO_MANY_REDIRECTS:
      throw Error(ErrorCode::io, "download of " + where + " failed: more than 10 redirects");
    default:
      throw Error(ErrorCode::io, "download of " + where + " failed: " + detail);
  }
  if (result.status >= 200 && result.status < 300 && expected >= 0 && t.bytes != static_cast<uint64_t>(expected)) {
    throw Error(ErrorCode::io, "download of " + where + " failed: received " + std::to_string(t.bytes) +
                                   " bytes but the Content-Length said " + std::to_string(expected) + "; nothing was kept");
  }
  return result;
}

}  // namespace leanembed::hub
