// The agent's main loop and one check, as its stages (docs/AGENT.md, "One check"):
//   fetch offers → download (bounded) → verify → decide (on the signed manifest) → apply →
//   record → report.
// Server data is hostile until verified: the check-in answer is read by a total, bounded
// parser (offers.h); an offer is only a download hint; everything decided comes from the
// manifest of a bundle whose signature verified against the trust store.
#include "agent/agent.h"

#include <malloc.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <random>
#include <thread>

#include "agent/agent_impl.h"
#include "agent/policy.h"
#include "core/clock.h"
#include "core/fd.h"
#include "core/log.h"
#include "core/strings.h"
#include "klp/apply.h"
#include "proc/maps.h"

#ifndef NINES_VERSION
#define NINES_VERSION "0"
#endif

namespace nines::agent {

using nlohmann::json;

std::atomic<bool> g_stop{false};

namespace {

void on_signal(int) { g_stop = true; }

// sd_notify without libsystemd: one datagram to $NOTIFY_SOCKET.
void sd_notify(const std::string& msg) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (!path || !*path) return;
  Fd s(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!s.valid()) return;
  std::string p = path;
  auto a = unix_address(p, "NOTIFY_SOCKET");
  if (!a) return;
  if (p[0] == '@') a->sun_path[0] = 0;  // abstract socket
  ::sendto(s.get(), msg.data(), msg.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&*a),
           static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + p.size()));
}

int64_t jittered(int64_t interval, double fraction) {
  static std::mt19937_64 rng{std::random_device{}()};
  std::uniform_real_distribution<double> d(0, fraction);
  return std::max<int64_t>(1, interval - static_cast<int64_t>(interval * d(rng)));
}

// The report state the server knows for a row state ("" when there is nothing to report).
// A refusal is an apply-failed with its reason: the server's report states predate it.
std::string report_state(RowState s) {
  switch (s) {
    case RowState::kApplied:
      return "applied";
    case RowState::kApplyFailed:
    case RowState::kInterrupted:
    case RowState::kRefused:
      return "apply-failed";
    case RowState::kDeferred:
      return "deferred";
    case RowState::kNotApplicable:
      return "not-applicable";
    default:
      return {};
  }
}

// Text for the server's report fields: no control characters, at most 1000 bytes, cut on
// a UTF-8 boundary (the server refuses anything else, and would refuse the whole report).
std::string report_text(std::string s) {
  for (char& c : s)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  if (s.size() > 1000) {
    size_t n = 1000;
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xc0) == 0x80) --n;
    s.resize(n);
  }
  return s;
}

// Rows whose outcome is settled: a check does not process them again by itself.
bool settled(RowState s) {
  return s == RowState::kApplied || s == RowState::kInterrupted || s == RowState::kApplyFailed ||
         s == RowState::kSuperseded || s == RowState::kRefused;
}

// A value of the journal's kv table; "" when absent or unreadable.
std::string kv(StateDb& db, const std::string& key) {
  auto v = db.get(key);
  return v && *v ? **v : std::string();
}
int64_t kv_int(StateDb& db, const std::string& key) { return parse_i64(kv(db, key)).value_or(0); }

std::string bundle_file(const Paths& paths, const std::string& sha256) {
  return paths.bundle_dir() + "/" + sha256 + ".bundle";
}

}  // namespace

// --- small facts -----------------------------------------------------------------------

void mkdirs(const std::string& dir, int mode) {
  for (size_t i = 1; i <= dir.size(); ++i)
    if (i == dir.size() || dir[i] == '/') ::mkdir(dir.substr(0, i).c_str(), mode);
}

std::string kernel_release() {
  utsname u{};
  uname(&u);
  return u.release;
}
std::string kernel_version() {
  utsname u{};
  uname(&u);
  return u.version;
}

int64_t boot_unix() {
  auto t = read_file("/proc/stat", 1 << 20);
  if (!t) return 0;
  for (auto line : split(*t, '\n'))
    if (starts_with(line, "btime ")) return parse_i64(trim(line.substr(6))).value_or(0);
  return 0;
}

std::pair<uint64_t, uint64_t> start_and_size(pid_t pid) {
  auto t = read_file("/proc/" + std::to_string(pid) + "/stat", 4096);
  if (!t) return {0, 0};
  size_t rp = t->rfind(')');
  if (rp == std::string::npos || rp + 2 > t->size()) return {0, 0};
  auto fields = split(std::string_view(*t).substr(rp + 2), ' ');
  if (fields.size() < 21) return {0, 0};
  // Field 22 is the 20th after "pid (comm)".
  return {parse_u64(fields[19]).value_or(0), parse_u64(fields[20]).value_or(0)};
}

std::string livepatch_unavailable_reason() {
  struct stat st {};
  if (::stat("/sys/kernel/livepatch", &st) != 0)
    return "kernel livepatch unavailable on this machine (/sys/kernel/livepatch absent)";
  return {};
}

Result<bundle::Bundle> read_cached_bundle(const Paths& paths, const std::string& sha256,
                                          const std::string& trust) {
  auto bytes = NINES_TRY(read_file(bundle_file(paths, sha256), bundle::kMaxBundleBytes));
  return bundle::open_verified(bytes, trust);
}

Result<ActivePatch> load_active(const bundle::Bundle& b, const std::string& what) {
  ActivePatch a;
  a.obj = std::make_shared<ulp::PatchObject>(NINES_TRY(ulp::load_patch_object(b.payload, what)));
  if (a.obj->meta.target_build_id != b.manifest.target_build_id)
    return make_error("{}: the manifest names build-id {}, the payload {}", what,
                      b.manifest.target_build_id, a.obj->meta.target_build_id);
  // The bundle's id is what the registry records (as `nines apply` does).
  a.obj->meta.id = b.manifest.id;
  a.version = b.manifest.version;
  a.digest = b.payload_sha256_hex;
  return a;
}

// --- policy and the server link ----------------------------------------------------------

void Agent::reload_policy(bool force) {
  struct stat st {};
  int64_t m = ::stat(paths_.config_file.c_str(), &st) == 0
                  ? st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec
                  : 0;
  if (!force && m == config_mtime_) return;
  config_mtime_ = m;
  auto p = load_policy(paths_.config_file);
  if (!p) {
    // Keep the last good policy: a typo in the file must not change what is applied.
    config_error_ = p.error().message;
    spdlog::error("{} (keeping the previous policy)", config_error_);
    return;
  }
  config_error_.clear();
  bool first = force;
  int64_t old_interval = policy_.check_interval_s;
  policy_ = *p;
  bool was_stopped = stopped_.exchange(policy_.mode == "stop");
  // Processes started while in mode stop were not looked at: look at every process now.
  if (was_stopped && !stopped_) full_rescan_ = true;
  if (!first) {
    spdlog::info("policy reloaded from {}", paths_.config_file);
    // A changed policy is evaluated now (deferred patches may become due or stay held).
    refresh_ = true;
    if (policy_.check_interval_s != old_interval)
      next_check_ = std::min(next_check_, unix_now() + jittered(policy_.check_interval_s, 0.1));
  }
}

std::optional<ServerLink> Agent::link() {
  auto token = read_file(paths_.token_file(), 4096);
  if (!token || policy_.remote_server.empty()) return std::nullopt;
  auto c = ServerLink::open({policy_.remote_server, std::string(trim(*token)), policy_.ca_certs,
                             policy_.http_proxy});
  if (!c) {
    last_result_ = "error: " + c.error().message;
    return std::nullopt;
  }
  return std::move(*c);
}

// --- start: reconcile with what is true ----------------------------------------------------

void Agent::reconcile() {
  auto rows = db_->patches();
  if (!rows) {
    spdlog::error("reconcile: {}", rows.error().message);
    return;
  }
  std::string lp = livepatch_unavailable_reason();
  std::vector<klp::KernelPatchState> kpatches;
  if (lp.empty()) {
    auto k = klp::list();
    if (k) kpatches = *k;
  }
  for (auto& row : *rows) {
    if (row.state == RowState::kApplying) {
      row.state = RowState::kInterrupted;
      row.reason = fmt::format(
          "apply interrupted at {} (the agent stopped during the apply); not retried "
          "automatically: `nines refresh --retry` retries it",
          format_rfc3339(row.updated_unix));
      spdlog::warn("{} version {}: {}", row.id, row.version, row.reason);
      (void)db_->upsert(row);
    } else if (row.state == RowState::kApplied && row.kind == "kernel") {
      bool loaded = false;
      for (const auto& k : kpatches) loaded |= (k.id == row.id && k.version == row.version);
      if (!loaded) {
        // A reboot (or someone) removed it: apply it again at the next check.
        row.state = RowState::kOffered;
        row.reason = "not loaded in the running kernel";
        (void)db_->upsert(row);
      }
    } else if (row.state == RowState::kApplied && row.kind == "userspace") {
      auto b = read_cached_bundle(paths_, row.sha256, policy_.trust_dir);
      auto a = b ? load_active(*b, row.id) : Result<ActivePatch>(b.error());
      if (!a) {
        spdlog::error("reconcile {}: {}", row.id, a.error().message);
        continue;
      }
      std::lock_guard<std::mutex> g(apply_mu_);
      active_.insert_or_assign(row.id, std::move(*a));
      any_active_ = true;
    }
  }
  // A switch this agent was killed in the middle of (between two 5-byte writes) is rolled
  // back first, so no process stays half patched (ulp/registry.h, the journal).
  {
    std::lock_guard<std::mutex> g(apply_mu_);
    pid_t self = getpid();
    for (pid_t pid : proc::list_processes()) {
      if (pid == self) continue;
      auto reg = ulp::read_registry(pid);
      if (!reg || !*reg || !(*reg)->interrupted()) continue;
      auto r = ulp::recover_interrupted_switch(pid, {});
      if (!r) spdlog::error("pid {}: rolling back an interrupted switch: {}", pid, r.error().message);
    }
  }
  // The registries are the truth for user space: processes that map an applied target and
  // lack the patch (restarted while the agent was down) are patched by the first rescan.
  full_rescan_ = true;
}

// --- stage 1: fetch offers ---------------------------------------------------------------

Result<CheckinAnswer> Agent::fetch_offers(ServerLink& api) {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  json body = {{"name", host},
               {"arch", "x86_64"},
               {"kernel_release", kernel_release()},
               {"build_ids",
                check_snapshot_ ? check_snapshot_->all_build_ids() : snapshot().all_build_ids()}};
  std::string text = NINES_TRY(api.post("/v1/checkin", body, kMaxCheckinAnswerBytes,
                                        static_cast<int>(policy_.server_timeout_s)));
  auto answer = parse_checkin_answer(text);
  if (!answer) return answer.error().wrap("answer refused");
  server_tier_ = answer->tier;
  return answer;
}

// The signed catalogue of this check (docs/SECURITY.md): verified, not replayed, or the
// reason the catalogue is stale. Never blocks anything by itself.
void Agent::update_catalogue(const CheckinAnswer& answer, const std::vector<PatchRow>& rows) {
  int64_t now = unix_now();
  fresh_doc_.reset();
  int64_t newest = kv_int(*db_, "catalogue/issued");
  int64_t expires = kv_int(*db_, "catalogue/expires");
  std::string why;  // why this check has no current signed catalogue
  if (!answer.freshness) {
    why = answer.freshness_error.empty() ? "server sends no freshness data"
                                         : answer.freshness_error;
  } else {
    auto keys = bundle::load_trust_store(timestamp_key_dir(paths_));
    if (!keys || keys->empty()) {
      why = fmt::format(
          "no timestamp key trusted ({} holds no *.pub; `nines enable --timestamp-key FILE`)",
          timestamp_key_dir(paths_));
    } else if (auto doc = verify_freshness(*answer.freshness, *keys, server_tier_); !doc) {
      why = doc.error().message;
    } else if (doc->issued_unix < newest) {
      why = fmt::format(
          "replayed catalogue ignored: issued {}, older than the one verified before (issued {})",
          format_rfc3339(doc->issued_unix), format_rfc3339(newest));
    } else {
      newest = doc->issued_unix;
      expires = doc->expires_unix;
      (void)db_->put("catalogue/issued", std::to_string(newest));
      (void)db_->put("catalogue/expires", std::to_string(expires));
      (void)db_->put("catalogue/generation", std::to_string(doc->generation));
      fresh_doc_ = std::move(*doc);
    }
  }
  CatalogueState c;
  c.reason.clear();  // fresh unless a reason below says otherwise
  c.issued_unix = newest;
  if (fresh_doc_) {
    if (now > newest + policy_.catalogue_max_age_s) {
      c.since_unix = newest + policy_.catalogue_max_age_s;
      c.reason = fmt::format("the newest signed catalogue was issued {}, longer ago than "
                             "catalogue-max-age ({})",
                             format_rfc3339(newest), format_duration(policy_.catalogue_max_age_s));
    } else if (now > expires) {
      c.since_unix = expires;
      c.reason = fmt::format("the signed catalogue expired at {}", format_rfc3339(expires));
    }
    // Withheld: the signed catalogue lists a newer version than the one offered (or, when
    // nothing is offered, than the one this machine has).
    std::map<std::string, int64_t> have;
    for (const auto& o : answer.offers) have[o.id] = std::max(have[o.id], o.version);
    for (const auto& r : rows)
      if (!have.count(r.id) && (r.state == RowState::kApplied || r.state == RowState::kDeferred))
        have[r.id] = std::max(have[r.id], r.version);
    for (const auto& [id, v] : have)
      if (auto e = fresh_doc_->bundles.find(id); e != fresh_doc_->bundles.end() && e->second.version > v)
        c.withheld.push_back(fmt::format("{}: version {} is in the signed catalogue, version {} {}",
                                         id, e->second.version, v,
                                         answer.offers.empty() ? "applied" : "offered"));
    if (!c.withheld.empty() && c.reason.empty()) {
      c.reason = "the server withholds newer patches: ";
      for (size_t i = 0; i < c.withheld.size(); ++i) c.reason += (i ? "; " : "") + c.withheld[i];
    }
  } else {
    c.reason = why;
  }
  c.stale = !c.reason.empty();
  if (c.stale && c.since_unix == 0) {
    // Stale since the first check that found it so (kept while it stays stale).
    int64_t since = kv_int(*db_, "catalogue/stale-since");
    c.since_unix = since > 0 && catalogue_.stale ? since : now;
  }
  (void)db_->put("catalogue/stale-since", c.stale ? std::to_string(c.since_unix) : "");
  if (c.stale && c.reason != catalogue_.reason)
    spdlog::warn("catalogue stale since {}: {}", format_rfc3339(c.since_unix), c.reason);
  catalogue_ = std::move(c);
  m_catalogue_stale_ = catalogue_.stale ? 1 : 0;
  m_catalogue_issued_ = catalogue_.issued_unix;
}

// --- stage 2: record offers in the journal -------------------------------------------------

void Agent::record_offers(const CheckinAnswer& answer) {
  auto refused_once = [&](Refusal r) {
    for (const auto& x : refusals_)
      if (x.id == r.id && x.version == r.version && x.sha256 == r.sha256 && x.reason == r.reason)
        return;
    spdlog::warn("offer refused: {}", r.reason);
    refusals_.push_back(std::move(r));
  };
  for (const auto& r : answer.rejected) refused_once({r.id, r.version, "", "refused: " + r.reason});
  for (const auto& o : answer.offers) {
    auto existing = db_->patch(o.id, o.version);
    if (!existing) continue;  // the journal is unreadable: nothing can be decided now
    if (*existing && (*existing)->sha256 == o.sha256) continue;
    if (*existing) {
      PatchRow& old = **existing;
      bool used = old.state == RowState::kApplied || old.state == RowState::kSuperseded ||
                  old.state == RowState::kApplying || old.state == RowState::kInterrupted ||
                  old.state == RowState::kReverted;
      if (used) {
        // Same id and version, different content: never "already applied".
        refused_once({o.id, o.version, o.sha256,
                      fmt::format("refused: bundle {} version {} offered with sha256 {}, but "
                                  "sha256 {} was applied under the same id and version "
                                  "(same id and version, different content)",
                                  o.id, o.version, o.sha256, old.sha256)});
        continue;
      }
    }
    // A new offer, or one whose content changed before it was ever used: decided afresh.
    PatchRow row;
    row.id = o.id;
    row.version = o.version;
    row.sha256 = o.sha256;
    // Hints, shown until the bundle verifies; replaced by the signed manifest's values.
    row.kind = o.kind;
    row.target_name = o.target_name;
    row.target_build_id = o.target_build_id;
    row.kernel_release = o.kernel_release;
    row.published_unix = o.published_unix;
    // Below the version floor: refused without a download (refusing on the offer's word is
    // safe; applying on it never is). A higher offered version is checked again against
    // the signed manifest once downloaded.
    if (auto fl = db_->floor(o.id); fl && o.version < *fl) {
      refuse(row, fmt::format("bundle {} version {} is older than version {} applied before "
                              "(no rollback; `nines apply --allow-downgrade` by hand)",
                              o.id, o.version, *fl));
      continue;
    }
    (void)db_->upsert(row);
  }
}

// --- stages 3-6 for one patch id: download, verify, decide, apply ------------------------

void Agent::refuse(PatchRow& row, const std::string& reason) {
  row.state = RowState::kRefused;
  row.reason = "refused: " + reason;
  row.until_unix = 0;
  spdlog::warn("{} version {}: {}", row.id, row.version, row.reason);
  (void)db_->upsert(row);
}

ServerLink::Download Agent::download(ServerLink& api, const PatchRow& row) {
  std::string file = bundle_file(paths_, row.sha256);
  struct stat st {};
  if (::stat(file.c_str(), &st) == 0) return {true, false, ""};
  mkdirs(paths_.bundle_dir(), 0700);
  // The exchange process streams the body to disk (never more than max-download) and
  // keeps it only when its digest is the one offered.
  auto d = api.download("/v1/bundles/sha256/" + row.sha256, row.sha256, file,
                        policy_.max_download, static_cast<int>(policy_.server_timeout_s));
  if (!d.ok) d.error = fmt::format("download bundle {} version {}: {}", row.id, row.version, d.error);
  return d;
}

Result<bundle::Bundle> Agent::verify(const PatchRow& row) {
  auto b = read_cached_bundle(paths_, row.sha256, policy_.trust_dir);
  if (!b) {
    // Nothing unverifiable is kept: the next offer of this digest downloads it again.
    ::unlink(bundle_file(paths_, row.sha256).c_str());
    return b.error();
  }
  return b;
}

// The offer's fields are hints: each one the server sent must agree with the signed
// manifest. Returns the first disagreement ("" when they agree).
std::string Agent::check_signed_against_offer(const PatchRow& row, const bundle::Manifest& m) {
  auto differs = [&](const char* what, const std::string& offered, const std::string& signed_) {
    return fmt::format("the offer says {} {}, the signed manifest {}", what,
                       offered.empty() ? "(none)" : offered, signed_.empty() ? "(none)" : signed_);
  };
  if (row.id != m.id) return differs("id", row.id, m.id);
  if (row.version != m.version)
    return differs("version", std::to_string(row.version), std::to_string(m.version));
  if (!row.kind.empty() && row.kind != m.kind) return differs("kind", row.kind, m.kind);
  if (!row.target_build_id.empty() && row.target_build_id != m.target_build_id)
    return differs("target build-id", row.target_build_id, m.target_build_id);
  if (!row.target_name.empty() && row.target_name != m.target_name)
    return differs("target", row.target_name, m.target_name);
  if (!row.kernel_release.empty() && row.kernel_release != m.kernel_release)
    return differs("kernel release", row.kernel_release, m.kernel_release);
  if (row.published_unix != 0 && row.published_unix != m.published_unix)
    return differs("publication time", format_rfc3339(row.published_unix),
                   format_rfc3339(m.published_unix));
  return {};
}

void Agent::process_row(PatchRow& row, ServerLink* api) {
  if (settled(row.state)) return;
  // Download first, bounded: what is decided must come from the signed manifest, and the
  // manifest is inside the bundle (docs/AGENT.md, "Decide only on verified data").
  if (api) {
    auto d = download(*api, row);
    if (!d.ok && d.refused) return refuse(row, d.error);
    if (!d.ok) {
      row.state = RowState::kOffered;
      row.reason = d.error;
      (void)db_->upsert(row);
      return;
    }
  } else if (struct stat st{}; ::stat(bundle_file(paths_, row.sha256).c_str(), &st) != 0) {
    // Server unreachable (or mode no-refresh) and not downloaded yet: wait, do not fail.
    row.state = RowState::kOffered;
    row.reason = "waiting for the download (server not asked or unreachable)";
    (void)db_->upsert(row);
    return;
  }
  auto b = verify(row);
  if (!b) return refuse(row, b.error().message);
  const bundle::Manifest& m = b->manifest;
  if (auto why = check_signed_against_offer(row, m); !why.empty()) return refuse(row, why);
  if (fresh_doc_) {
    auto e = fresh_doc_->bundles.find(m.id);
    if (e == fresh_doc_->bundles.end() || e->second.version != m.version ||
        e->second.sha256 != row.sha256)
      return refuse(row, fmt::format(
                             "bundle {} version {} (sha256 {}) is not in the signed catalogue "
                             "of tier {} (generation {}){}",
                             m.id, m.version, row.sha256, fresh_doc_->tier, fresh_doc_->generation,
                             e == fresh_doc_->bundles.end()
                                 ? ""
                                 : fmt::format(", which lists version {}", e->second.version)));
  }
  auto fl = db_->floor(m.id);
  int64_t floor = fl ? *fl : 0;
  if (m.version < floor)
    return refuse(row, fmt::format("bundle {} version {} is older than version {} applied before "
                                   "(no rollback; `nines apply --allow-downgrade` by hand)",
                                   m.id, m.version, floor));
  // From here on the row speaks the signed manifest.
  row.kind = m.kind;
  row.target_name = m.target_name;
  row.target_build_id = m.target_build_id;
  row.kernel_release = m.kernel_release;
  row.published_unix = m.published_unix;
  row.manifest_json = bundle::manifest_to_json(m).dump();
  if (m.kind == "kernel") {
    if (std::string why = livepatch_unavailable_reason(); !why.empty()) {
      row.state = RowState::kNotApplicable;
      row.reason = why;
      (void)db_->upsert(row);
      return;
    }
  }
  Decision d = decide(policy_, bundle::highest_severity(m), m.published_unix, unix_now());
  if (d.action == Action::kDefer) {
    row.state = RowState::kDeferred;
    row.reason = d.reason;
    row.until_unix = d.until_unix;
    (void)db_->upsert(row);
    return;
  }
  row.until_unix = 0;
  apply_row(row, *b);
}

void Agent::apply_row(PatchRow& row, const bundle::Bundle& b) {
  // The journal first: a crash from here on leaves "applying", which the next start turns
  // into "interrupted" instead of retrying.
  applied_in_check_ = true;
  row.state = RowState::kApplying;
  row.reason.clear();
  (void)db_->upsert(row);
  if (hooks_.before_apply) hooks_.before_apply(row.id, row.version);
  if (row.kind == "kernel") {
    klp::ApplyOptions ko;
    ko.version = row.version;
    std::lock_guard<std::mutex> g(apply_mu_);
    auto r = klp::apply_module(b.payload, ko);
    row.state = r ? RowState::kApplied : RowState::kApplyFailed;
    row.reason = r ? "" : r.error().message;
  } else {
    auto a = load_active(b, row.id);
    if (!a) {
      row.state = RowState::kApplyFailed;
      row.reason = a.error().message;
    } else {
      std::lock_guard<std::mutex> g(apply_mu_);
      // New processes are tracked from before the pass over the existing ones: one that
      // starts during the apply is looked at once the patch is active.
      any_active_ = true;
      auto pids = ulp::processes_mapping("", row.target_build_id, cache_, {});
      ulp::ApplyOptions opts;
      opts.version = row.version;
      opts.digest = a->digest;
      int ok = 0;
      std::string first_error;
      for (pid_t pid : pids) {
        auto out = ulp::apply_patch(*a->obj, pid, opts, cache_);
        if (out) {
          ++ok;
          ++m_applies_;
          failures_.erase({row.id, pid});
          done_[row.id].insert({pid, start_time(pid)});
          spdlog::info("{} version {}: pid {}: {}", row.id, row.version, pid, out->action);
        } else {
          failures_[{row.id, pid}] = out.error().message;
          ++m_apply_failures_;
          if (first_error.empty())
            first_error = fmt::format("pid {}: {}", pid, out.error().message);
          spdlog::error("{} version {}: pid {}: {}", row.id, row.version, pid, out.error().message);
        }
      }
      if (!pids.empty() && ok == 0) {
        row.state = RowState::kApplyFailed;
        row.reason = first_error;
        any_active_ = !active_.empty();
      } else {
        row.state = RowState::kApplied;
        row.reason = first_error.empty() ? "" : "some processes failed: " + first_error;
        active_.insert_or_assign(row.id, std::move(*a));
        any_active_ = true;
      }
    }
  }
  // Record: the row, and the version floor (never lowered).
  (void)db_->upsert(row);
  if (row.state == RowState::kApplied) (void)db_->raise_floor(row.id, row.version);
}

// --- stage 7: report ------------------------------------------------------------------------

void Agent::report(ServerLink& api) {
  auto rows = db_->patches();
  if (!rows) return;
  int timeout = static_cast<int>(policy_.server_timeout_s);
  auto line = [](const std::string& id, int64_t version, const std::string& state,
                 const std::string& reason) {
    json l = {{"id", id}, {"version", version}, {"state", state}};
    if (state != "applied" && !(state == "not-applicable" && reason.empty()))
      l["reason"] = reason.empty() ? state : report_text(reason);
    return l;
  };
  json lines = json::array();
  std::vector<PatchRow*> sent, refused;
  for (auto& r : *rows) {
    std::string s = report_state(r.state);
    if (s.empty() || s == r.reported) continue;
    (r.state == RowState::kRefused ? refused : sent).push_back(&r);
    if (r.state != RowState::kRefused) lines.push_back(line(r.id, r.version, s, r.reason));
  }
  json catalogue = catalogue_json();
  if (catalogue.contains("reason")) catalogue["reason"] = report_text(catalogue["reason"]);
  std::string catalogue_text = catalogue.dump();
  bool catalogue_changed = kv(*db_, "catalogue/reported") != catalogue_text;
  if (!lines.empty() || catalogue_changed) {
    json body = {{"reports", lines}, {"catalogue", catalogue}};
    // What changed may change what needs a restart or a reboot: the advisor's verdict goes
    // with the report (only then: it scans every process).
    if (!lines.empty()) {
      if (auto a = api.advisor(paths_.root)) {
        body["advisor"] = *a;
        advisor_ = *a;
      } else {
        spdlog::warn("advisor: {}", a.error().message);
      }
    }
    if (auto res = api.post_json("/v1/reports", body, timeout); !res) {
      spdlog::warn("report: {}", res.error().message);
    } else {
      for (auto* r : sent) {
        r->reported = report_state(r->state);
        (void)db_->upsert(*r);
      }
      (void)db_->put("catalogue/reported", catalogue_text);
    }
  }
  // Refusals go one per request: a relabelled offer names an id and version that the
  // server's catalogue may not hold, and its 4xx must not hold back the other lines. Each
  // is sent once, whatever the answer.
  for (auto* r : refused) {
    json body = {{"reports", json::array({line(r->id, r->version, "apply-failed", r->reason)})}};
    if (auto res = api.post_json("/v1/reports", body, timeout); !res)
      spdlog::warn("report refusal of {} version {}: {}", r->id, r->version, res.error().message);
    r->reported = report_state(r->state);
    (void)db_->upsert(*r);
  }
  for (auto& x : refusals_) {
    if (x.reported) continue;
    x.reported = true;
    if (x.id.empty() || x.version < 1) continue;  // nothing the server could file it under
    json body = {{"reports", json::array({line(x.id, x.version, "apply-failed", x.reason)})}};
    if (auto res = api.post_json("/v1/reports", body, timeout); !res)
      spdlog::warn("report refusal of {} version {}: {}", x.id, x.version, res.error().message);
  }
}

// --- one check ------------------------------------------------------------------------------

void Agent::check(bool retry_interrupted) {
  int64_t now = unix_now();
  applied_in_check_ = false;
  check_snapshot_.reset();
  auto en = db_->get("enabled");
  enabled_ = en && *en && **en == "1";
  if (retry_interrupted) {
    auto rows = db_->patches();
    if (rows)
      for (auto& r : *rows)
        // A refusal may come from this machine's own trust store or policy: the operator
        // who fixed it asks again with --retry.
        if (r.state == RowState::kInterrupted || r.state == RowState::kApplyFailed ||
            r.state == RowState::kRefused) {
          r.state = RowState::kOffered;
          r.reason.clear();
          (void)db_->upsert(r);
        }
  }
  if (!enabled_) {
    last_result_ = "disabled (run `nines enable TOKEN --server URL`)";
    next_check_ = now + policy_.check_interval_s;
    save_status();
    return;
  }
  if (policy_.mode == "stop") {
    last_result_ = "skipped: mode is stop";
    next_check_ = now + jittered(policy_.check_interval_s, 0.1);
    save_status();
    return;
  }
  // 1. fetch offers (and the signed catalogue that comes with them)
  std::optional<ServerLink> api;
  bool server_ok = true;
  size_t refused_before = refusals_.size();
  if (policy_.mode != "no-refresh") {
    api = link();
    if (!api) {
      server_ok = false;
      if (last_result_.rfind("error", 0) != 0)
        last_result_ =
            "error: not enrolled or no remote-server (run `nines enable TOKEN --server URL`)";
    } else {
      check_snapshot_ = snapshot();
      auto answer = fetch_offers(*api);
      if (!answer) {
        server_ok = false;
        last_result_ = "error: server unreachable: " + answer.error().message;
        spdlog::warn("check: {} (keeping what is applied)", answer.error().message);
      } else {
        last_result_ = fmt::format("ok: {} bundle(s) offered", answer->offers.size());
        if (!policy_.tier.empty() && policy_.tier != server_tier_)
          last_result_ += fmt::format(
              " (warning: the server has this machine in tier '{}', the policy expects '{}')",
              server_tier_, policy_.tier);
        auto known = db_->patches();
        update_catalogue(*answer, known ? *known : std::vector<PatchRow>{});
        // 2. record them in the journal
        record_offers(*answer);
      }
    }
  } else {
    last_result_ = "ok: mode is no-refresh (server not asked)";
  }
  if (!server_ok) fresh_doc_.reset();
  // 3-6. download, verify, decide, apply: the newest version of each patch id only
  // (patches are cumulative), among the rows not refused.
  auto rows = db_->patches();
  std::map<std::string, PatchRow*> newest;
  if (rows) {
    for (auto& r : *rows)
      if (r.state != RowState::kRefused && (!newest.count(r.id) || newest[r.id]->version < r.version))
        newest[r.id] = &r;
    for (auto& [id, r] : newest) {
      if (!server_ok && r->state != RowState::kDeferred && r->state != RowState::kOffered) continue;
      process_row(*r, server_ok ? &*api : nullptr);
    }
    for (auto& r : *rows) {
      auto n = newest.find(r.id);
      if (n == newest.end() || n->second == &r || r.state == RowState::kRefused) continue;
      if (n->second->state == RowState::kApplied && r.state != RowState::kSuperseded) {
        r.state = RowState::kSuperseded;
        r.reason = fmt::format("replaced by version {}", n->second->version);
        (void)db_->upsert(r);
      }
    }
  }
  size_t refused = refusals_.size() - refused_before;
  if (auto all = db_->patches())
    for (const auto& r : *all)
      if (r.state == RowState::kRefused && r.reported.empty()) ++refused;
  if (server_ok && refused > 0) last_result_ += fmt::format("; {} offer(s) refused", refused);
  // 7. report
  if (server_ok && api) report(*api);
  last_check_ = now;
  ++m_checks_;
  if (!server_ok) ++m_check_failures_;
  if (server_ok) {
    backoff_s_ = 0;
    next_check_ = unix_now() + jittered(policy_.check_interval_s, 0.1);
  } else {
    // Back off with jitter, never longer than the interval.
    backoff_s_ = backoff_s_ == 0 ? 5 : std::min<int64_t>(backoff_s_ * 2, 600);
    int64_t b = std::min(backoff_s_, policy_.check_interval_s);
    next_check_ = unix_now() + jittered(b, 0.5);
  }
  // A patch waiting for its delay is looked at again when it becomes due.
  if (rows)
    for (auto& [id, r] : newest)
      if (r->state == RowState::kDeferred && r->until_unix > 0)
        next_check_ = std::min(next_check_, r->until_unix + 1);
  save_status();
  check_snapshot_.reset();
  malloc_trim(0);  // give back what the check's /proc pass and JSON documents used
}

// --- the main loop ----------------------------------------------------------------------------

int Agent::run(bool once) {
  started_ = unix_now();
  catalogue_.since_unix = started_;
  auto db = StateDb::open(paths_.state_db());
  if (!db) {
    spdlog::error("nines agent: {}", db.error().message);
    return 1;
  }
  db_.emplace(std::move(*db));
  mkdirs(paths_.bundle_dir(), 0700);
  {
    std::lock_guard<std::mutex> g(mu_);
    reload_policy(true);
    if (!config_error_.empty()) {
      spdlog::error("nines agent: {}", config_error_);
      return 1;
    }
    reconcile();
    refresh_ = true;  // check at start
  }
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  // Bound before READY=1: a unit ordered after the agent finds the socket.
  auto listener = open_socket();
  if (!listener) {
    spdlog::error("nines agent: {}", listener.error().message);
    return 1;
  }
  std::thread sock([this, fd = std::move(*listener)]() mutable { serve_socket(std::move(fd)); });
  std::thread watch([this] { watch_processes(); });
  sd_notify("READY=1\nSTATUS=running");
  spdlog::info("nines agent {} started (state {}, socket {})", NINES_VERSION, paths_.state_dir,
               paths_.socket_path);
  if (policy_.remote_server.starts_with("http://"))
    spdlog::warn("remote-server {} is plain http: answers can be altered on the way (bundles "
                 "are still verified; prefer https)",
                 policy_.remote_server);
  int64_t watchdog_us = 0;
  if (const char* w = std::getenv("WATCHDOG_USEC")) watchdog_us = std::atoll(w);
  int64_t last_ping = 0;
  std::unique_lock<std::mutex> l(mu_);
  while (!g_stop) {
    reload_policy(false);
    update_metrics_server();
    if (disable_) {
      disable_ = false;
      l.unlock();
      json r;
      {
        // revert_all takes apply_mu_ via the engine calls it makes; keep rescans out.
        std::lock_guard<std::mutex> ga(apply_mu_);
        active_.clear();
        any_active_ = false;
        done_.clear();
        failures_.clear();
        r = revert_all(*db_, paths_);
      }
      l.lock();
      enabled_ = false;
      last_disable_ = r;
      ++disables_done_;
      save_status();
      cv_.notify_all();
    }
    if (refresh_ || unix_now() >= next_check_) {
      bool retry = retry_;
      refresh_ = retry_ = false;
      try {
        check(retry);
      } catch (const std::exception& e) {
        // Nothing the server sends may end the agent: a bug found by hostile input is a
        // failed check, logged, and the next one runs as scheduled.
        last_result_ = fmt::format("error: check failed: {}", e.what());
        spdlog::error("check: {}", e.what());
        next_check_ = unix_now() + 60;
        check_snapshot_.reset();
      }
      ++checks_done_;
      cv_.notify_all();
      if (once) break;
    }
    int64_t now_ns = monotonic_ns();
    if (watchdog_us > 0 && now_ns - last_ping > watchdog_us * 1000 / 2) {
      sd_notify("WATCHDOG=1");
      last_ping = now_ns;
    }
    cv_.wait_for(l, std::chrono::milliseconds(500));
  }
  g_stop = true;
  l.unlock();
  sd_notify("STOPPING=1");
  metrics_.reset();
  sock.join();
  watch.join();
  std::lock_guard<std::mutex> g(mu_);
  save_status();
  spdlog::info("nines agent stopped");
  return 0;
}

int run_agent(const AgentOptions& opts) {
  // One malloc arena: the agent's threads allocate little, and every extra arena keeps
  // its own dirty pages (idle memory is a target: docs/AGENT.md).
  mallopt(M_ARENA_MAX, 1);
  Agent a(opts);
  return a.run(opts.once);
}

json revert_all(StateDb& db, const Paths& paths) {
  (void)paths;
  json out = {{"reverted", json::array()}, {"failed", json::array()}};
  (void)db.put("enabled", "0");
  auto rows = db.patches();
  if (!rows) {
    out["failed"].push_back({{"error", rows.error().message}});
    return out;
  }
  for (auto& r : *rows) {
    if (r.state != RowState::kApplied && r.state != RowState::kApplying &&
        r.state != RowState::kInterrupted && r.state != RowState::kSuperseded)
      continue;
    bool ok = true;
    if (r.kind == "kernel") {
      if (livepatch_unavailable_reason().empty()) {
        auto k = klp::revert(r.id, {});
        if (!k) {
          ok = false;
          out["failed"].push_back({{"id", r.id}, {"error", k.error().message}});
        }
      }
    } else {
      for (pid_t pid : ulp::processes_with_patch(r.id, {})) {
        auto res = ulp::revert_patch(r.id, pid, {});
        if (res) {
          out["reverted"].push_back({{"id", r.id}, {"pid", pid}});
        } else {
          ok = false;
          out["failed"].push_back({{"id", r.id}, {"pid", pid}, {"error", res.error().message}});
        }
      }
    }
    if (ok) {
      r.state = RowState::kReverted;
      r.reason = "reverted by `nines disable`";
      r.reported.clear();
      (void)db.upsert(r);
    }
  }
  return out;
}

}  // namespace nines::agent
