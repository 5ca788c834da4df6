#include "harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "core/subprocess.h"

namespace nines::test {

CommandResult run_nines(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {NINES_BIN};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = run_process(argv);
  if (!r) return {-1, r.error().message};
  return {r->exit_code, r->output};
}

std::string build_patch(const std::string& name, const std::string& target, const std::string& id) {
  std::filesystem::create_directories(WORK_DIR);
  std::string out = std::string(WORK_DIR) + "/" + (id.empty() ? name : id) + ".patch";
  std::vector<std::string> args = {"build", "--target", target, "-o", out};
  if (!id.empty()) {
    args.push_back("--id");
    args.push_back(id);
  }
  args.push_back(std::string(PATCHES_DIR) + "/" + name + ".c");
  auto r = run_nines(args);
  if (r.exit_code != 0) ADD_FAILURE() << "nines build " << name << " failed: " << r.output;
  return out;
}

Target::Target(const std::string& program, int threads) {
  int in[2], out[2], fd3[2];
  if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(fd3, O_CLOEXEC)) abort();
  std::string path = std::string(FIXTURES_DIR) + "/" + program;
  std::string nthreads = std::to_string(threads);
  pid_ = fork();
  if (pid_ == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(fd3[0], 3);
    execl(path.c_str(), path.c_str(), nthreads.c_str(), (char*)nullptr);
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  close(fd3[0]);
  to_ = in[1];
  from_ = out[0];
  feed_ = fd3[1];
  std::string ready = ask("", 20000);
  EXPECT_EQ(ready, "ready") << "target " << program << " did not start";
}

Target::~Target() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  close(to_);
  close(from_);
  close(feed_);
}

std::string Target::ask(const std::string& command, int timeout_ms) {
  if (!command.empty()) {
    std::string line = command + "\n";
    if (write(to_, line.data(), line.size()) != static_cast<ssize_t>(line.size())) return "";
  }
  for (;;) {
    auto nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return line;
    }
    pollfd p{from_, POLLIN, 0};
    int r = poll(&p, 1, timeout_ms);
    if (r <= 0) return "";
    char buf[4096];
    ssize_t n = read(from_, buf, sizeof buf);
    if (n <= 0) return "";
    buffer_.append(buf, static_cast<size_t>(n));
  }
}

void Target::send(const std::string& command) {
  std::string line = command + "\n";
  if (write(to_, line.data(), line.size()) != static_cast<ssize_t>(line.size())) ADD_FAILURE() << "send failed";
}

void Target::feed(const std::string& data) {
  if (write(feed_, data.data(), data.size()) < 0) ADD_FAILURE() << "feed failed";
}

std::string Target::thread_states() const {
  std::string out;
  std::string dir = "/proc/" + std::to_string(pid_) + "/task";
  DIR* d = opendir(dir.c_str());
  if (!d) return out;
  while (dirent* de = readdir(d)) {
    if (de->d_name[0] == '.') continue;
    std::ifstream f(dir + "/" + de->d_name + "/stat");
    std::string stat((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    auto p = stat.rfind(')');
    if (p != std::string::npos && p + 2 < stat.size()) out.push_back(stat[p + 2]);
  }
  closedir(d);
  return out;
}

bool Target::alive() const {
  int status;
  return waitpid(pid_, &status, WNOHANG) == 0;
}

}  // namespace nines::test
