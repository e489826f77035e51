// Running `leanembed serve` from tests: a child process on 127.0.0.1 with a free port (--port 0; the
// port is read from its "listening on" line), a small HTTP client (cpp-httplib's, from Debian) and
// raw sockets for misbehaving clients. Every wait is bounded.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <cstring>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "test_support.h"

namespace leanembed::test {

inline std::string tiny_model() { return shared_dir() + "/models/tiny-bert-synthetic"; }
inline std::string minilm_model() { return shared_dir() + "/models/minilm-l6-synthetic"; }

class ServerProcess {
 public:
  // Starts `leanembed serve --port 0 --threads 1 <args>` (without --threads 1 if args give
  // --threads) with extra environment `env` ("NAME=value").
  explicit ServerProcess(std::vector<std::string> args, std::vector<std::string> env = {}) {
    int err_pipe[2];
    if (::pipe2(err_pipe, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(err_pipe[1], 2);
      for (const std::string& e : env) ::putenv(const_cast<char*>(e.c_str()));
      ::setenv("OMP_WAIT_POLICY", "passive", 1);
      std::vector<std::string> argv = {LEANEMBED_CLI, "serve", "--port", "0", "--hostname", "127.0.0.1"};
      if (std::find(args.begin(), args.end(), "--threads") == args.end()) argv.insert(argv.end(), {"--threads", "1"});
      argv.insert(argv.end(), args.begin(), args.end());
      std::vector<char*> c;
      for (auto& a : argv) c.push_back(a.data());
      c.push_back(nullptr);
      ::execv(LEANEMBED_CLI, c.data());
      ::_exit(127);
    }
    ::close(err_pipe[1]);
    err_fd_ = err_pipe[0];
    reader_ = std::thread([this] { read_stderr(); });
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    for (;;) {
      {
        std::lock_guard lock(mutex_);
        auto at = stderr_.find("listening on http://127.0.0.1:");
        if (at != std::string::npos) {
          port_ = std::stoi(stderr_.substr(at + std::strlen("listening on http://127.0.0.1:")));
          break;
        }
        if (stderr_closed_) break;
      }
      if (std::chrono::steady_clock::now() > deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (port_ == 0) {
      stop(SIGKILL);
      throw std::runtime_error("the server did not start; its stderr:\n" + stderr_text());
    }
  }
  ~ServerProcess() {
    if (pid_ > 0) stop(SIGKILL);
  }

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::string stderr_text() {
    std::lock_guard lock(mutex_);
    return stderr_;
  }
  // Sends `signal`, waits (up to `seconds`) for the process to end; returns its exit code, or -1
  // if a signal ended it, or -2 if it had to be killed after the wait.
  int stop(int signal = SIGTERM, double seconds = 60) {
    if (pid_ <= 0) return exit_code_;
    ::kill(pid_, signal);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    int status = 0;
    for (;;) {
      pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        break;
      }
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        exit_code_ = -2;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    pid_ = -1;
    if (reader_.joinable()) reader_.join();
    return exit_code_;
  }

  httplib::Client client(int timeout_seconds = 60) const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(timeout_seconds, 0);
    c.set_write_timeout(timeout_seconds, 0);
    c.set_connection_timeout(10, 0);
    return c;
  }

 private:
  void read_stderr() {
    char buf[4096];
    for (;;) {
      ssize_t n = ::read(err_fd_, buf, sizeof buf);
      if (n <= 0) break;
      std::lock_guard lock(mutex_);
      stderr_.append(buf, static_cast<size_t>(n));
    }
    ::close(err_fd_);
    std::lock_guard lock(mutex_);
    stderr_closed_ = true;
  }
  pid_t pid_ = -1;
  int err_fd_ = -1;
  int port_ = 0;
  int exit_code_ = -3;
  std::mutex mutex_;
  std::string stderr_;
  bool stderr_closed_ = false;
  std::thread reader_;
};

// A raw TCP connection to the server (for slow, half-open and vanishing clients).
inline int connect_to(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

inline void send_all(int fd, const std::string& bytes) {
  size_t at = 0;
  while (at < bytes.size()) {
    ssize_t n = ::send(fd, bytes.data() + at, bytes.size() - at, MSG_NOSIGNAL);
    if (n <= 0) return;
    at += static_cast<size_t>(n);
  }
}

// Reads until the peer closes or `seconds` pass; returns what came and whether the peer closed.
inline std::pair<std::string, bool> read_until_closed(int fd, double seconds) {
  std::string got;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  char buf[4096];
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return {got, true};
    got.append(buf, static_cast<size_t>(n));
  }
  return {got, false};
}

// One HTTP response read from a raw connection: status line, headers and a Content-Length body.
struct RawResponse {
  int status = 0;  // 0: no complete response came (the peer closed, or `seconds` passed)
  std::string head, body;
};

inline RawResponse read_response(int fd, double seconds) {
  std::string got;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  char buf[4096];
  while (std::chrono::steady_clock::now() < deadline) {
    const size_t end = got.find("\r\n\r\n");
    if (end != std::string::npos) {
      std::string head = got.substr(0, end);
      std::string lower = head;
      std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
      size_t length = 0;
      if (const size_t at = lower.find("\r\ncontent-length:"); at != std::string::npos) {
        length = std::stoul(head.substr(at + std::strlen("\r\ncontent-length:")));
      }
      if (got.size() >= end + 4 + length) {
        RawResponse r;
        if (head.rfind("HTTP/1.", 0) == 0 && head.size() > 12) r.status = std::stoi(head.substr(9, 3));
        r.head = std::move(head);
        r.body = got.substr(end + 4, length);
        return r;
      }
    }
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  return {};
}

// True if, for `seconds`, nothing arrives on the connection and the peer does not close it. Only a
// negative check: a server that answers late on a slow machine can pass it, one that answers as it
// should never fails it.
inline bool stays_silent(int fd, double seconds) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(seconds * 1000)) == 0;
}

inline std::string post_request(const std::string& path, const std::string& body, const std::string& extra_headers = "") {
  return "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n" + extra_headers + "\r\n" + body;
}

// The first value of a Prometheus sample line that starts with `name` (e.g. "leanembed_model_loads").
inline double metric(const std::string& text, const std::string& name) {
  size_t at = 0;
  while ((at = text.find(name, at)) != std::string::npos) {
    if ((at == 0 || text[at - 1] == '\n') && (text[at + name.size()] == ' ' || text[at + name.size()] == '{')) {
      size_t sp = text.find(' ', text.find('}', at) != std::string::npos && text[at + name.size()] == '{' ? text.find('}', at) : at);
      return std::stod(text.substr(sp + 1));
    }
    at += name.size();
  }
  return -1;
}

// ---- Requests and reference vectors ----

using nlohmann::json;

inline const std::string kJson = "application/json";

// Vectors `leanembed embed` gives for `texts` (one per line of a file), float32, row after row.
inline std::vector<std::vector<float>> cli_vectors(const std::string& model, const std::vector<std::string>& texts,
                                            const std::string& extra = "") {
  const std::filesystem::path dir = std::filesystem::path(binary_dir()) / "test_server_tmp" / std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  {
    std::ofstream in(dir / "texts.txt", std::ios::binary);
    for (const auto& t : texts) in << t << "\n";
  }
  const std::string cmd = std::string("OMP_WAIT_POLICY=passive ") + LEANEMBED_CLI + " embed --threads 1 --model " + model +
                          " --format f32 --input " + (dir / "texts.txt").string() + " -o " + (dir / "out.f32").string() +
                          " " + extra;
  if (std::system(cmd.c_str()) != 0) throw std::runtime_error("failed: " + cmd);
  const std::string bytes = read_file((dir / "out.f32").string());
  std::vector<float> flat(bytes.size() / 4);
  std::memcpy(flat.data(), bytes.data(), bytes.size());
  const size_t dims = flat.size() / texts.size();
  std::vector<std::vector<float>> rows;
  for (size_t i = 0; i < texts.size(); ++i) rows.emplace_back(flat.begin() + i * dims, flat.begin() + (i + 1) * dims);
  return rows;
}

inline bool bitwise(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * 4) == 0;
}

inline std::vector<std::string> corpus_sentences(size_t n) {
  std::ifstream in(shared_dir() + "/corpus/sentences.txt");
  std::vector<std::string> out;
  std::string line;
  while (out.size() < n && std::getline(in, line))
    if (!line.empty()) out.push_back(line);
  return out;
}

inline std::string long_text(int words) {
  std::string t;
  for (int i = 0; i < words; ++i) t += "word" + std::to_string(i) + " ";
  return t;
}

inline json post_json(httplib::Client& c, const std::string& path, const json& body, int* status = nullptr,
               httplib::Headers headers = {}) {
  auto r = c.Post(path, headers, body.dump(), kJson);
  if (!r) throw std::runtime_error("no answer to POST " + path);
  if (status) *status = r->status;
  return r->body.empty() ? json() : json::parse(r->body);
}

inline std::vector<float> as_floats(const json& j) { return j.get<std::vector<float>>(); }

inline void expect_tei_error(const httplib::Result& r, int status, const std::string& type, const std::string& fragment) {
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, status) << r->body;
  json j = json::parse(r->body);
  EXPECT_EQ(j.at("error_type"), type) << r->body;
  EXPECT_NE(j.at("error").get<std::string>().find(fragment), std::string::npos) << r->body;
}

inline void expect_openai_error(const httplib::Result& r, int status, const std::string& fragment) {
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, status) << r->body;
  json j = json::parse(r->body);
  EXPECT_EQ(j.at("error").at("code"), status) << r->body;
  EXPECT_TRUE(j.at("error").at("type").is_string()) << r->body;
  EXPECT_NE(j.at("error").at("message").get<std::string>().find(fragment), std::string::npos) << r->body;
}


}  // namespace leanembed::test
