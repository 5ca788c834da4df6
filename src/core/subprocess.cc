#include "core/subprocess.h"

#include <cerrno>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/fd.h"

extern char** environ;

namespace nines {

Result<ProcessResult> run_process(const std::vector<std::string>& argv, const std::string& cwd) {
  if (argv.empty()) return make_error("run: empty command");
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) return errno_error("pipe");
  Fd rd(pipefd[0]), wr(pipefd[1]);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, wr.get(), 1);
  posix_spawn_file_actions_adddup2(&fa, wr.get(), 2);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  if (!cwd.empty()) posix_spawn_file_actions_addchdir_np(&fa, cwd.c_str());

  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, cargv[0], &fa, nullptr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return errno_error(fmt::format("run {}", argv[0]), rc);
  wr.reset();

  ProcessResult res;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(rd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    res.output.append(buf, static_cast<size_t>(n));
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return errno_error(fmt::format("wait for {}", argv[0]));
  }
  if (WIFEXITED(status)) res.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) res.signal = WTERMSIG(status);
  return res;
}

Result<std::string> run_checked(const std::vector<std::string>& argv, const std::string& cwd) {
  ProcessResult r = NINES_TRY(run_process(argv, cwd));
  if (r.exit_code != 0) {
    std::string tail = r.output.size() > 4000 ? r.output.substr(r.output.size() - 4000) : r.output;
    while (!tail.empty() && tail.back() == '\n') tail.pop_back();
    if (r.signal) return make_error("{} was killed by signal {}:\n{}", argv[0], r.signal, tail);
    return make_error("{} failed (exit {}):\n{}", argv[0], r.exit_code, tail);
  }
  return std::move(r.output);
}

Result<std::string> sibling_program(const std::string& name) {
  char self[4096];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return errno_error("readlink /proc/self/exe");
  std::string path(self, static_cast<size_t>(n));
  path = path.substr(0, path.rfind('/') + 1) + name;
  if (::access(path.c_str(), X_OK) != 0)
    return errno_error(fmt::format("{} (installed next to {})", path, std::string(self, n)));
  return path;
}

}  // namespace nines
