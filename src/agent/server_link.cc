#include "agent/server_link.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "core/clock.h"
#include "core/subprocess.h"
#include "agent/offers.h"

extern char** environ;

namespace nines::agent {

using nlohmann::json;

namespace {

// Waits for the child up to `timeout_ms`, then kills it. Never leaves a zombie.
void reap(pid_t pid, int timeout_ms) {
  for (int waited = 0; waited < timeout_ms; waited += 10) {
    pid_t r = ::waitpid(pid, nullptr, WNOHANG);
    if (r == pid || (r < 0 && errno != EINTR)) return;
    ::usleep(10'000);
  }
  ::kill(pid, SIGKILL);
  while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
}

}  // namespace

Result<ServerLink> ServerLink::open(const LinkConfig& config) {
  std::string exe = NINES_TRY(sibling_program("nines"));
  int in[2], out[2];
  if (::pipe2(in, O_CLOEXEC) != 0) return errno_error("agent-exchange: pipe");
  Fd in_rd(in[0]), in_wr(in[1]);
  if (::pipe2(out, O_CLOEXEC) != 0) return errno_error("agent-exchange: pipe");
  Fd out_rd(out[0]), out_wr(out[1]);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in_rd.get(), 0);
  posix_spawn_file_actions_adddup2(&fa, out_wr.get(), 1);
  const char* argv[] = {exe.c_str(), "agent-exchange", nullptr};
  ServerLink link;
  int rc = ::posix_spawn(&link.pid_, exe.c_str(), &fa, nullptr, const_cast<char**>(argv), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return errno_error(fmt::format("agent-exchange: start {}", exe), rc);
  link.to_ = std::move(in_wr);
  link.from_ = std::move(out_rd);
  NINES_TRY(link.call({{"op", "hello"},
                       {"server", config.server},
                       {"token", config.token},
                       {"ca_certs", config.ca_certs},
                       {"http_proxy", config.http_proxy}},
                      10));
  return link;
}

ServerLink::ServerLink(ServerLink&& o) noexcept
    : pid_(o.pid_), to_(std::move(o.to_)), from_(std::move(o.from_)),
      pending_(std::move(o.pending_)) {
  o.pid_ = -1;
}

ServerLink& ServerLink::operator=(ServerLink&& o) noexcept {
  if (this != &o) {
    close();
    pid_ = o.pid_;
    o.pid_ = -1;
    to_ = std::move(o.to_);
    from_ = std::move(o.from_);
    pending_ = std::move(o.pending_);
  }
  return *this;
}

ServerLink::~ServerLink() { close(); }

void ServerLink::close() {
  to_.reset();  // EOF: the child exits
  from_.reset();
  if (pid_ > 0) reap(pid_, 5000);
  pid_ = -1;
}

Result<json> ServerLink::call(const json& request, int timeout_s, bool keep_error_answer) {
  std::string op = request.value("op", "");
  if (pid_ <= 0) return make_error("agent-exchange: {}: the exchange process is gone", op);
  auto broken = [&](std::string why) {
    to_.reset();
    from_.reset();
    if (pid_ > 0) reap(pid_, 1000);
    pid_ = -1;
    return make_error("agent-exchange: {}: {}", op, why);
  };
  std::string line = request.dump() + "\n";
  for (size_t off = 0; off < line.size();) {
    ssize_t n = ::write(to_.get(), line.data() + off, line.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return broken(fmt::format("write: {}", strerror(errno)));
    off += static_cast<size_t>(n);
  }
  int64_t deadline = monotonic_ns() + int64_t{timeout_s} * 1'000'000'000;
  size_t nl;
  while ((nl = pending_.find('\n')) == std::string::npos) {
    int64_t left_ms = (deadline - monotonic_ns()) / 1'000'000;
    if (left_ms <= 0) return broken(fmt::format("no answer within {} s (killed)", timeout_s));
    pollfd p{from_.get(), POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left_ms, 1000)));
    if (r < 0 && errno != EINTR) return broken(fmt::format("poll: {}", strerror(errno)));
    if (r <= 0) continue;
    char buf[65536];
    ssize_t n = ::read(from_.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return broken("the exchange process exited without answering");
    pending_.append(buf, static_cast<size_t>(n));
    // A check-in answer is at most kMaxCheckinAnswerBytes; JSON-escaped, at most 6 times that.
    if (pending_.size() > 6 * kMaxCheckinAnswerBytes + 4096)
      return broken("answer larger than the check-in answer limit");
  }
  json answer = json::parse(pending_.substr(0, nl), nullptr, false);
  pending_.erase(0, nl + 1);
  if (!answer.is_object()) return broken("answer is not a JSON object");
  if (answer.contains("error") && !keep_error_answer)
    return make_error("{}", answer["error"].is_string() ? answer["error"].get<std::string>()
                                                        : std::string("agent-exchange: error"));
  return answer;
}

Result<std::string> ServerLink::post(const std::string& path, const json& body,
                                     uint64_t max_bytes, int timeout_s) {
  json a = NINES_TRY(call({{"op", "post"},
                           {"path", path},
                           {"body", body},
                           {"max_bytes", max_bytes},
                           {"timeout_s", timeout_s}},
                          timeout_s + 10));
  auto t = a.find("text");
  if (t == a.end() || !t->is_string())
    return make_error("agent-exchange: post {}: answer without text", path);
  return t->get<std::string>();
}

Result<json> ServerLink::post_json(const std::string& path, const json& body, int timeout_s) {
  std::string text = NINES_TRY(post(path, body, 1u << 20, timeout_s));
  if (auto d = check_json_depth(text, kMaxJsonDepth); !d)
    return d.error().wrap("POST " + path + ": answer");
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) return make_error("POST {}: answer is not JSON", path);
  return j;
}

ServerLink::Download ServerLink::download(const std::string& path, const std::string& sha256,
                                          const std::string& file, uint64_t max_bytes,
                                          int timeout_s) {
  Download d;
  auto a = call({{"op", "download"},
                 {"path", path},
                 {"sha256", sha256},
                 {"file", file},
                 {"max_bytes", max_bytes},
                 {"timeout_s", timeout_s}},
                timeout_s + 10, /*keep_error_answer=*/true);
  if (!a) {
    d.error = a.error().message;
    return d;
  }
  if (auto e = a->find("error"); e != a->end()) {
    d.error = e->is_string() ? e->get<std::string>() : "download failed";
    d.refused = a->value("refused", false);
    return d;
  }
  d.ok = true;
  return d;
}

Result<json> ServerLink::advisor(const std::string& root) {
  json a = NINES_TRY(call({{"op", "advisor"}, {"root", root}}, 300));
  return a.value("advisor", json(nullptr));
}

}  // namespace nines::agent
