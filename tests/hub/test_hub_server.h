// A stand-in for the Hugging Face hub on 127.0.0.1 (a port the kernel picks), for the download
// tests: serves a model folder's files under the hub's URL layout, GET /<id>/resolve/<revision>/<file>,
// and under /lfs/<file> (where its redirects lead, as the hub sends large files to a CDN host).
// Each file can be given a misbehaviour: 404, 500, 401, a 302 to another server, a connection cut
// mid-body (RST), a body shorter than its Content-Length (clean close), a stall. Plain POSIX
// sockets, one thread per connection, every response "Connection: close"; all loops bounded.
// With a certificate and key (PEM files) it speaks HTTPS (OpenSSL), for the verification tests.
#pragma once

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace leanembed::test {

class TestHubServer {
 public:
  enum class Act { serve, not_found, server_error, unauthorized, redirect, cut, short_body, stall };
  struct Behaviour {
    Act act = Act::serve;
    size_t bytes = 0;                 // cut / short_body / stall: body bytes sent first
    int times = -1;                   // applies this many times, then the file is served (-1: always)
    TestHubServer* target = nullptr;  // redirect: the server (another "host": localhost:<its port>)
  };
  struct Request {
    std::string path, file, authorization, host;
  };

  // Serves `folder` as model `id` at `revision` (as the hub encodes it in URLs).
  TestHubServer(std::string folder, std::string id, std::string revision = "main", const std::string& tls_cert = "",
                const std::string& tls_key = "")
      : folder_(std::move(folder)), id_(std::move(id)), revision_(std::move(revision)) {
    if (!tls_cert.empty()) {
      ::signal(SIGPIPE, SIG_IGN);  // OpenSSL writes to a socket the client may have closed
      tls_ = SSL_CTX_new(TLS_server_method());
      if (!tls_ || SSL_CTX_use_certificate_chain_file(tls_, tls_cert.c_str()) != 1 ||
          SSL_CTX_use_PrivateKey_file(tls_, tls_key.c_str(), SSL_FILETYPE_PEM) != 1) {
        throw std::runtime_error("test server: cannot load the TLS certificate or key");
      }
    }
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0) throw std::runtime_error("test server: socket failed");
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listen_fd_, 64) != 0) {
      ::close(listen_fd_);
      throw std::runtime_error("test server: bind/listen on 127.0.0.1 failed");
    }
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    accept_thread_ = std::thread([this] { accept_loop(); });
  }

  ~TestHubServer() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    stopped_.notify_all();
    accept_thread_.join();
    for (auto& t : connections_) t.join();
    ::close(listen_fd_);
    if (tls_) SSL_CTX_free(tls_);
  }
  TestHubServer(const TestHubServer&) = delete;
  TestHubServer& operator=(const TestHubServer&) = delete;

  int port() const { return port_; }
  std::string endpoint() const { return std::string(tls_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_); }

  void set(const std::string& file, Behaviour b) {
    std::lock_guard<std::mutex> lock(mutex_);
    behaviours_[file] = b;
  }
  void require_token(const std::string& token) {
    std::lock_guard<std::mutex> lock(mutex_);
    token_ = token;
  }
  std::vector<Request> requests() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return requests_;
  }
  // How many requests asked for `file` (under /resolve/ or /lfs/).
  int count(const std::string& file) const {
    int n = 0;
    for (const auto& r : requests())
      if (r.file == file) ++n;
    return n;
  }

 private:
  void accept_loop() {
    while (true) {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (stop_) return;
      }
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      std::lock_guard<std::mutex> lock(mutex_);
      connections_.emplace_back([this, fd] {
        handle(fd);
        ::close(fd);
      });
    }
  }

  // One accepted connection: plain, or TLS over it.
  struct Conn {
    int fd = -1;
    SSL* ssl = nullptr;
  };
  static bool send_all(Conn& c, const char* data, size_t n) {
    while (n > 0) {
      const ssize_t w = c.ssl ? SSL_write(c.ssl, data, static_cast<int>(n)) : ::send(c.fd, data, n, MSG_NOSIGNAL);
      if (w <= 0) return false;
      data += w;
      n -= static_cast<size_t>(w);
    }
    return true;
  }
  static bool send_all(Conn& c, const std::string& s) { return send_all(c, s.data(), s.size()); }
  static ssize_t receive(Conn& c, char* buf, size_t n) {
    return c.ssl ? SSL_read(c.ssl, buf, static_cast<int>(n)) : ::recv(c.fd, buf, n, 0);
  }

  static std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  }

  void respond(Conn& fd, int status, const std::string& reason, const std::string& extra_headers, const std::string& body) {
    send_all(fd, "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\nContent-Length: " + std::to_string(body.size()) +
                     "\r\nConnection: close\r\n" + extra_headers + "\r\n" + body);
  }

  void handle(int socket_fd) {
    timeval tv{5, 0};
    ::setsockopt(socket_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(socket_fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    Conn fd{socket_fd, nullptr};
    if (tls_) {
      fd.ssl = SSL_new(tls_);
      SSL_set_fd(fd.ssl, socket_fd);
      if (SSL_accept(fd.ssl) != 1) {  // e.g. the client refused our certificate
        SSL_free(fd.ssl);
        ERR_clear_error();
        return;
      }
    }
    serve(fd);
    if (fd.ssl) {
      SSL_shutdown(fd.ssl);
      SSL_free(fd.ssl);
      ERR_clear_error();
    }
  }

  void serve(Conn& fd) {
    std::string head;
    char buf[4096];
    while (head.find("\r\n\r\n") == std::string::npos && head.size() < 65536) {
      const ssize_t r = receive(fd, buf, sizeof buf);
      if (r <= 0) return;
      head.append(buf, static_cast<size_t>(r));
    }
    Request req;
    const size_t sp1 = head.find(' '), sp2 = head.find(' ', sp1 + 1);
    if (sp1 == std::string::npos || sp2 == std::string::npos) return;
    req.path = head.substr(sp1 + 1, sp2 - sp1 - 1);
    for (size_t at = head.find("\r\n"); at != std::string::npos && at + 2 < head.size();) {
      const size_t end = head.find("\r\n", at + 2);
      if (end == std::string::npos) break;
      const std::string line = head.substr(at + 2, end - at - 2);
      const size_t colon = line.find(':');
      if (colon != std::string::npos) {
        const std::string name = lower(line.substr(0, colon));
        std::string value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.erase(0, 1);
        if (name == "authorization") req.authorization = value;
        if (name == "host") req.host = value;
      }
      at = end;
    }
    std::string path = req.path.substr(0, req.path.find('?'));
    const std::string resolve = "/" + id_ + "/resolve/";
    const bool lfs = path.rfind("/lfs/", 0) == 0;
    std::string token;
    Behaviour b;
    if (lfs) {
      req.file = path.substr(5);
    } else if (path.rfind(resolve, 0) == 0) {
      const std::string rest = path.substr(resolve.size());
      const size_t slash = rest.find('/');
      if (slash == std::string::npos || rest.substr(0, slash) != revision_) {
        record(req);
        respond(fd, 404, "Not Found", "X-Error-Code: RevisionNotFound\r\nX-Error-Message: Invalid rev id\r\n", "{}");
        return;
      }
      req.file = rest.substr(slash + 1);
    } else {
      record(req);
      respond(fd, 404, "Not Found", "X-Error-Code: RepoNotFound\r\nX-Error-Message: Repository not found\r\n", "{}");
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      requests_.push_back(req);
      token = token_;
      if (!lfs) {
        if (auto it = behaviours_.find(req.file); it != behaviours_.end() && it->second.times != 0) {
          b = it->second;
          if (it->second.times > 0) --it->second.times;
        }
      }
    }
    if (!lfs && !token.empty() && req.authorization != "Bearer " + token) {
      respond(fd, 401, "Unauthorized", "X-Error-Message: Invalid credentials in Authorization header\r\n", "{}");
      return;
    }
    const std::filesystem::path file = std::filesystem::path(folder_) / req.file;
    std::error_code ec;
    const bool there = req.file.find("..") == std::string::npos && std::filesystem::is_regular_file(file, ec);
    switch (b.act) {
      case Act::not_found:
        respond(fd, 404, "Not Found", "X-Error-Code: EntryNotFound\r\n", "Entry not found");
        return;
      case Act::server_error:
        respond(fd, 500, "Internal Server Error", "", "boom");
        return;
      case Act::unauthorized:
        respond(fd, 401, "Unauthorized", "", "{}");
        return;
      case Act::redirect:
        respond(fd, 302, "Found",
                "Location: http://localhost:" + std::to_string(b.target->port()) + "/lfs/" + req.file +
                    "?X-Amz-Signature=test\r\n",
                "Found. Redirecting");
        return;
      default:
        break;
    }
    if (!there) {
      respond(fd, 404, "Not Found", "X-Error-Code: EntryNotFound\r\nX-Error-Message: Entry not found\r\n", "Entry not found");
      return;
    }
    std::ifstream in(file, std::ios::binary);
    const uint64_t size = std::filesystem::file_size(file, ec);
    if (!send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(size) + "\r\nConnection: close\r\n\r\n")) return;
    const uint64_t limit = b.act == Act::serve ? size : std::min<uint64_t>(b.bytes, size);
    uint64_t sent = 0;
    while (sent < limit) {
      in.read(buf, static_cast<std::streamsize>(std::min<uint64_t>(sizeof buf, limit - sent)));
      const auto got = static_cast<size_t>(in.gcount());
      if (got == 0 || !send_all(fd, buf, got)) return;
      sent += got;
    }
    if (b.act == Act::cut) {
      linger l{1, 0};  // close with a reset, as a dropped connection looks
      ::setsockopt(fd.fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    } else if (b.act == Act::stall) {
      std::unique_lock<std::mutex> lock(mutex_);
      stopped_.wait_for(lock, std::chrono::seconds(30), [this] { return stop_; });
    } else if (b.act == Act::short_body) {
      ::shutdown(fd.fd, SHUT_WR);  // a clean close, short of the Content-Length
    }
  }

  void record(const Request& r) {
    std::lock_guard<std::mutex> lock(mutex_);
    requests_.push_back(r);
  }

  std::string folder_, id_, revision_;
  SSL_CTX* tls_ = nullptr;
  int listen_fd_ = -1;
  int port_ = 0;
  mutable std::mutex mutex_;
  std::condition_variable stopped_;
  bool stop_ = false;
  std::string token_;
  std::map<std::string, Behaviour> behaviours_;
  std::vector<Request> requests_;
  std::thread accept_thread_;
  std::vector<std::thread> connections_;
};

}  // namespace leanembed::test
