// nines keygen -o DIR: a publisher key pair for signing bundles.
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>

#include "bundle/bundle.h"
#include "cli/commands.h"
#include "core/fd.h"

namespace nines::cli {
namespace {

struct KeygenOptions {
  std::string dir;
  std::string comment;
  bool force = false;
};

int run_keygen(const KeygenOptions& o) {
  if (mkdir(o.dir.c_str(), 0700) != 0 && errno != EEXIST) {
    std::fprintf(stderr, "nines keygen: %s\n",
                 errno_error(fmt::format("create folder {}", o.dir)).message.c_str());
    return 1;
  }
  std::string key_path = o.dir + "/publisher.key";
  std::string pub_path = o.dir + "/publisher.pub";
  struct stat st {};
  if (!o.force && (lstat(key_path.c_str(), &st) == 0 || lstat(pub_path.c_str(), &st) == 0)) {
    std::fprintf(stderr,
                 "nines keygen: %s already holds a key; refusing to overwrite it (--force)\n",
                 o.dir.c_str());
    return 1;
  }
  bundle::KeyPair kp = bundle::generate_keypair();
  // The secret key is written 0600 before the public one, so a failure never leaves a
  // public key whose secret is lost.
  if (auto s = write_file_atomic(key_path, bundle::format_secret_key(kp.secret_key), 0600); !s) {
    std::fprintf(stderr, "nines keygen: %s\n", s.error().message.c_str());
    return 1;
  }
  if (auto s =
          write_file_atomic(pub_path, bundle::format_public_key(kp.public_key, o.comment), 0644);
      !s) {
    std::fprintf(stderr, "nines keygen: %s\n", s.error().message.c_str());
    return 1;
  }
  std::printf("secret key: %s (keep it private)\npublic key: %s\nfingerprint: %s\n",
              key_path.c_str(), pub_path.c_str(), bundle::fingerprint(kp.public_key).c_str());
  std::printf("trust it on a machine: install -m 0644 %s %s/<name>.pub\n", pub_path.c_str(),
              bundle::kDefaultTrustDir);
  return 0;
}

}  // namespace

Runner setup_keygen(CLI::App& app) {
  auto o = std::make_shared<KeygenOptions>();
  app.add_option("-o,--output", o->dir, "Folder for publisher.key (0600) and publisher.pub")
      ->required();
  app.add_option("--comment", o->comment, "Text appended to the public key line");
  app.add_flag("--force", o->force, "Overwrite an existing key pair");
  return [o] { return run_keygen(*o); };
}

}  // namespace nines::cli
