// Benchmark of the advisor's process scan (issue 5): N processes with M executable file
// mappings each, every 10th mapping one more file that is then replaced on disk (stale).
// Measures advisor::scan_processes() and, on the same state in the same run, the whole
// `nines check --format batch` command against `needrestart -b -r l`, in user mode (the
// scan alone) and in root mode (the scan, then package hooks per stale candidate).
//
// Must run as PID 1 of a private PID namespace (bench/advisor_bench.sh does this), so the
// only processes visible are its own. The children run as nobody: needrestart in user
// mode scans exactly like in root mode but skips the per-service package hooks, which
// would measure dpkg rather than the scan. needrestart ignores mappings under /tmp, so
// the files live in --dir (default: the current folder).
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "advisor/scan.h"
#include "core/clock.h"
#include "core/subprocess.h"

namespace {

struct Args {
  int processes = 1000, mappings = 100, runs = 5, stale_every = 10;
  std::string dir = ".", nines, needrestart = "needrestart";
  bool maps_text = false;  // scan the text of maps, as on kernels before 6.11
  std::string hold;        // a command to run on the built state (for profiling), then exit
};

// CPU time (user + system) of this process in ms: on a loaded machine the wall clock
// also counts the time other processes held the CPU.
double cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

[[noreturn]] void die(const char* what) {
  std::perror(what);
  std::exit(1);
}

void write_page_file(const std::string& path) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0755);
  if (fd < 0) die(path.c_str());
  std::string page(4096, '\xc3');  // ret
  if (write(fd, page.data(), page.size()) != 4096) die("write");
  close(fd);
}

// CPU time (user + system) of the waited-for children so far, in ms.
double children_cpu_ms() {
  rusage ru{};
  getrusage(RUSAGE_CHILDREN, &ru);
  auto ms = [](const timeval& t) { return static_cast<double>(t.tv_sec) * 1e3 + t.tv_usec / 1e3; };
  return ms(ru.ru_utime) + ms(ru.ru_stime);
}

// Wall time of a command in ms (its CPU time in *cpu), and its stdout.
double time_command(const std::vector<std::string>& argv, std::string* out, double* cpu) {
  nines::Stopwatch sw;
  double c0 = children_cpu_ms();
  auto r = nines::run_process(argv);
  double ms = static_cast<double>(sw.elapsed_ns()) / 1e6;
  *cpu = children_cpu_ms() - c0;
  if (!r.ok()) {
    std::fprintf(stderr, "%s\n", r.error().message.c_str());
    std::exit(1);
  }
  if (out) *out = r->output;
  return ms;
}

size_t count_pid_lines(const std::string& batch) {
  size_t n = 0, pos = 0;
  while ((pos = batch.find("NEEDRESTART-PID: ", pos)) != std::string::npos) {
    size_t eol = batch.find('\n', pos);
    std::string line = batch.substr(pos, eol - pos);
    n += static_cast<size_t>(std::count(line.begin(), line.end(), ',')) + 1;
    pos = eol;
  }
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--processes")
      a.processes = std::atoi(v.c_str());
    else if (k == "--mappings")
      a.mappings = std::atoi(v.c_str());
    else if (k == "--runs")
      a.runs = std::atoi(v.c_str());
    else if (k == "--dir")
      a.dir = v;
    else if (k == "--nines")
      a.nines = v;
    else if (k == "--needrestart")
      a.needrestart = v;
    else if (k == "--hold")
      a.hold = v;
    else if (k == "--maps-text")
      a.maps_text = v == "1";
    else {
      std::fprintf(stderr, "advisor_scan: unknown option %s\n", k.c_str());
      return 2;
    }
  }
  if (getpid() != 1) {
    std::fprintf(stderr, "advisor_scan: run me as PID 1 of `unshare --pid --fork --mount-proc`\n");
    return 2;
  }

  std::string dir = a.dir + "/advisor-bench-files";
  mkdir(dir.c_str(), 0755);
  chmod(dir.c_str(), 0755);
  std::vector<std::string> files;
  for (int i = 0; i < a.mappings; ++i) {
    files.push_back(dir + "/obj" + std::to_string(i) + ".so");
    write_page_file(files.back());
  }
  std::string stale_file = dir + "/stale.so";
  write_page_file(stale_file);

  int ready[2], hold[2];
  if (pipe(ready) != 0 || pipe(hold) != 0) die("pipe");
  std::vector<pid_t> kids;
  int expected_stale = 0;
  for (int p = 0; p < a.processes; ++p) {
    bool stale = p % a.stale_every == 0;
    expected_stale += stale;
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
      close(ready[0]);
      close(hold[1]);
      if (setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0) _exit(3);
      // A credential change clears "dumpable", which would hide /proc/PID/maps from
      // needrestart running as nobody.
      prctl(PR_SET_DUMPABLE, 1);
      std::vector<std::string> mine(files.begin(), files.end());
      if (stale) mine.back() = stale_file;  // M mappings, one of them the soon-stale file
      for (const std::string& f : mine) {
        int fd = open(f.c_str(), O_RDONLY);
        if (fd < 0 || mmap(nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0) == MAP_FAILED)
          _exit(4);
        close(fd);
      }
      char c = 1;
      if (write(ready[1], &c, 1) != 1) _exit(5);
      while (read(hold[0], &c, 1) > 0) {
      }
      _exit(0);
    }
    kids.push_back(pid);
  }
  close(ready[1]);
  close(hold[0]);
  for (int got = 0; got < a.processes;) {
    char buf[256];
    ssize_t n = read(ready[0], buf, sizeof buf);
    if (n <= 0) die("children did not start");
    got += static_cast<int>(n);
  }
  // Replace the stale file (new inode), as a package upgrade does.
  std::string tmp = stale_file + ".new";
  write_page_file(tmp);
  if (rename(tmp.c_str(), stale_file.c_str()) != 0) die("rename");

  if (!a.hold.empty()) {
    int st = std::system(a.hold.c_str());
    close(hold[1]);
    for (pid_t k : kids) waitpid(k, nullptr, 0);
    return WEXITSTATUS(st);
  }

  std::vector<double> scan_ms, scan_cpu;
  size_t found = 0, mappings = 0;
  for (int r = 0; r < a.runs; ++r) {
    nines::Stopwatch sw;
    double c0 = cpu_ms();
    nines::advisor::ScanOptions so;
    so.procmap_query = !a.maps_text;
    auto res = nines::advisor::scan_processes(so);
    scan_cpu.push_back(cpu_ms() - c0);
    scan_ms.push_back(static_cast<double>(sw.elapsed_ns()) / 1e6);
    if (!res.ok()) {
      std::fprintf(stderr, "%s\n", res.error().message.c_str());
      return 1;
    }
    found = res->stale.size();
    mappings = res->mappings;
  }
  std::printf(
      "state: %d processes, %d file mappings each (+ the program and its libraries), "
      "%d stale\n",
      a.processes, a.mappings, expected_stale);
  std::printf(
      "advisor::scan_processes (%s): wall median %.1f ms, min %.1f ms; CPU median %.1f ms, "
      "min %.1f ms; %d runs (%zu executable mappings checked, %zu stale found)\n",
      a.maps_text ? "maps text" : "PROCMAP_QUERY", median(scan_ms),
      *std::min_element(scan_ms.begin(), scan_ms.end()), median(scan_cpu),
      *std::min_element(scan_cpu.begin(), scan_cpu.end()), a.runs, mappings, found);
  int rc = found == static_cast<size_t>(expected_stale) ? 0 : 1;

  if (!a.nines.empty()) {
    std::vector<double> ni, nr, ni_cpu, nr_cpu, nrr, nrr_cpu;
    std::string ni_out, nr_out, nrr_out;
    int nr_runs = std::max(1, std::min(a.runs, 3));
    for (int r = 0; r < nr_runs; ++r) {
      double c = 0;
      ni.push_back(
          time_command({a.nines, "check", "--format", "batch", "--root", dir}, &ni_out, &c));
      ni_cpu.push_back(c);
      nr.push_back(time_command({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                 a.needrestart, "-b", "-r", "l"},
                                &nr_out, &c));
      nr_cpu.push_back(c);
      // Root mode, as administrators run it: the same scan, then package hooks per
      // stale candidate to find its service.
      nrr.push_back(time_command({a.needrestart, "-b", "-r", "l"}, &nrr_out, &c));
      nrr_cpu.push_back(c);
    }
    size_t ni_found = count_pid_lines(ni_out), nr_found = count_pid_lines(nr_out);
    std::printf("nines check --format batch: wall median %.1f ms, CPU median %.1f ms (%zu stale)\n",
                median(ni), median(ni_cpu), ni_found);
    std::printf("needrestart -b -r l:        wall median %.1f ms, CPU median %.1f ms (%zu stale)\n",
                median(nr), median(nr_cpu), nr_found);
    std::printf("needrestart -b -r l as root: wall median %.1f ms, CPU median %.1f ms\n",
                median(nrr), median(nrr_cpu));
    std::printf("ratio needrestart (user mode) / nines check: wall %.1fx, CPU %.1fx\n",
                median(nr) / median(ni), median(nr_cpu) / median(ni_cpu));
    std::printf("ratio needrestart (root mode) / nines check: wall %.1fx, CPU %.1fx\n",
                median(nrr) / median(ni), median(nrr_cpu) / median(ni_cpu));
    if (ni_found != nr_found || ni_found != static_cast<size_t>(expected_stale)) rc = 1;
  }

  close(hold[1]);
  for (pid_t k : kids) waitpid(k, nullptr, 0);
  for (const std::string& f : files) unlink(f.c_str());
  unlink(stale_file.c_str());
  rmdir(dir.c_str());
  if (rc != 0) std::fprintf(stderr, "advisor_scan: stale counts differ from the state built\n");
  return rc;
}
