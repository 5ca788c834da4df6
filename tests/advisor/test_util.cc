#include "test_util.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace nines::advisor::testing {

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/nines-advisor-XXXXXX";
  if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp " + tmpl);
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void write_file(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << data;
  if (!f) throw std::runtime_error("write " + path);
}

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void copy_file(const std::string& from, const std::string& to) {
  write_file(to, read_all(from));
  chmod(to.c_str(), 0755);
}

void mkdirs(const std::string& path) { std::filesystem::create_directories(path); }

void replace_file(const std::string& path) {
  std::string tmp = path + ".new";
  copy_file(path, tmp);
  if (rename(tmp.c_str(), path.c_str()) != 0) throw std::runtime_error("rename " + tmp);
}

Holder::Holder(const std::vector<std::string>& argv, const std::string& cwd) {
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
  pid_ = fork();
  if (pid_ == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    if (!cwd.empty() && chdir(cwd.c_str()) != 0) _exit(126);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  stdin_fd_ = in[1];
  stdout_fd_ = out[0];
  char buf[16] = {};
  ssize_t n = read(stdout_fd_, buf, sizeof buf - 1);
  if (n <= 0 || std::string(buf).rfind("ready", 0) != 0) {
    stop();
    throw std::runtime_error("program " + argv[0] + " did not start");
  }
}

Holder::Holder(const std::string& program, const std::vector<std::string>& libs)
    : Holder([&] {
        std::vector<std::string> argv{program};
        argv.insert(argv.end(), libs.begin(), libs.end());
        return argv;
      }()) {}

void Holder::stop() {
  if (stdin_fd_ >= 0) close(stdin_fd_);
  stdin_fd_ = -1;
  if (pid_ > 0) {
    int st;
    waitpid(pid_, &st, 0);
  }
  pid_ = -1;
  if (stdout_fd_ >= 0) close(stdout_fd_);
  stdout_fd_ = -1;
}

Holder::~Holder() { stop(); }

bool in_private_pid_namespace() { return getpid() == 1; }

}  // namespace nines::advisor::testing
