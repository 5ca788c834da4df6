// The control socket ROOT/run/nines/agent.sock: one request line, one JSON answer
// (docs/AGENT.md, "Control socket protocol"). 0600 from its first moment, and the peer
// must be root or the agent's own user.
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "agent/agent_impl.h"
#include "core/fd.h"
#include "core/log.h"

namespace nines::agent {

using nlohmann::json;

Result<sockaddr_un> unix_address(const std::string& path, std::string_view what) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.size() >= sizeof a.sun_path) return make_error("{} {}: path too long", what, path);
  std::memcpy(a.sun_path, path.data(), path.size());
  return a;
}

Result<Fd> Agent::open_socket() {
  mkdirs(paths_.socket_path.substr(0, paths_.socket_path.rfind('/')), 0755);
  ::unlink(paths_.socket_path.c_str());
  Fd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un a = NINES_TRY(unix_address(paths_.socket_path, "agent socket"));
  mode_t old = ::umask(0077);  // root-only from the first moment
  int rc = ::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::umask(old);
  if (rc != 0 || ::listen(s.get(), 16) != 0)
    return errno_error("agent socket " + paths_.socket_path);
  ::chmod(paths_.socket_path.c_str(), 0600);
  return s;
}

json Agent::answer_request(const std::string& line) {
  if (line == "status") return status();
  if (line == "refresh" || line == "refresh-retry" || line == "enable") {
    std::unique_lock<std::mutex> l(mu_);
    uint64_t target = checks_done_ + 1;
    refresh_ = true;
    retry_ |= line == "refresh-retry";
    cv_.notify_all();
    cv_.wait_for(l, std::chrono::seconds(120), [&] { return checks_done_ >= target || g_stop; });
    return last_status_;
  }
  if (line == "disable") {
    std::unique_lock<std::mutex> l(mu_);
    uint64_t target = disables_done_ + 1;
    disable_ = true;
    cv_.notify_all();
    cv_.wait_for(l, std::chrono::seconds(300), [&] { return disables_done_ >= target || g_stop; });
    return last_disable_;
  }
  return {{"error",
           fmt::format("agent: unknown request '{}' (status, refresh, refresh-retry, disable, enable)",
                       line)}};
}

void Agent::serve_socket(Fd s) {
  while (!g_stop) {
    pollfd p{s.get(), POLLIN, 0};
    if (::poll(&p, 1, 300) <= 0) continue;
    Fd c(::accept4(s.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!c.valid()) continue;
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(c.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
        (cred.uid != 0 && cred.uid != getuid()))
      continue;
    timeval tv{5, 0};
    ::setsockopt(c.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string line;
    char ch;
    while (line.size() < 256 && ::read(c.get(), &ch, 1) == 1 && ch != '\n') line += ch;
    json answer;
    try {
      answer = answer_request(line);
    } catch (const std::exception& e) {
      answer = {{"error", fmt::format("agent: {}: {}", line, e.what())}};
    }
    std::string out = answer.dump() + "\n";
    (void)!::write(c.get(), out.data(), out.size());
  }
  ::unlink(paths_.socket_path.c_str());
}

Result<json> request(const Paths& paths, const std::string& line, double timeout_s) {
  Fd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un a = NINES_TRY(unix_address(paths.socket_path, "agent socket"));
  if (::connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
    return errno_error("agent socket " + paths.socket_path + ": connect");
  timeval tv{static_cast<time_t>(timeout_s), 0};
  ::setsockopt(s.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string msg = line + "\n";
  if (::write(s.get(), msg.data(), msg.size()) != static_cast<ssize_t>(msg.size()))
    return errno_error("agent socket " + paths.socket_path + ": write");
  std::string out;
  char buf[65536];
  ssize_t n;
  while ((n = ::read(s.get(), buf, sizeof buf)) > 0) out.append(buf, n);
  if (n < 0) return errno_error("agent socket " + paths.socket_path + ": read " + line);
  auto j = json::parse(out, nullptr, false);
  if (j.is_discarded())
    return make_error("agent socket {}: {}: answer is not JSON", paths.socket_path, line);
  if (j.is_object() && j.contains("error"))
    return make_error("{}", j["error"].is_string() ? j["error"].get<std::string>() : j["error"].dump());
  return j;
}

}  // namespace nines::agent
