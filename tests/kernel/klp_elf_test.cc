// The livepatch ELF rewrite on a real relocatable object compiled here with gcc: the
// module-elf-format rules are checked by reading the result back with libelf.
#include "klp/klp_elf.h"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <filesystem>
#include <map>

#include <gtest/gtest.h>

#include "core/fd.h"
#include "core/subprocess.h"
#include "klp/meta.h"

namespace nines::klp {
namespace {

namespace fs = std::filesystem;

struct SectionInfo {
  uint32_t type = 0;
  uint64_t flags = 0;
  uint32_t info = 0;
  std::string info_name;
  size_t entries = 0;
  std::vector<std::string> rela_symbols;
};

// name -> section, and the names of symbols in SHN_LIVEPATCH.
void read_elf(const std::string& path, std::map<std::string, SectionInfo>& secs,
              std::vector<std::string>& livepatch_syms) {
  elf_version(EV_CURRENT);
  int fd = ::open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  Elf* e = elf_begin(fd, ELF_C_READ, nullptr);
  ASSERT_NE(e, nullptr);
  size_t shstrndx;
  elf_getshdrstrndx(e, &shstrndx);
  Elf_Scn* symscn = nullptr;
  GElf_Shdr symsh{};
  for (Elf_Scn* s = elf_nextscn(e, nullptr); s; s = elf_nextscn(e, s)) {
    GElf_Shdr sh;
    gelf_getshdr(s, &sh);
    if (sh.sh_type == SHT_SYMTAB) {
      symscn = s;
      symsh = sh;
    }
  }
  ASSERT_NE(symscn, nullptr);
  Elf_Data* symdata = elf_getdata(symscn, nullptr);
  for (size_t i = 1; i < symdata->d_size / symsh.sh_entsize; ++i) {
    GElf_Sym sym;
    gelf_getsym(symdata, static_cast<int>(i), &sym);
    if (sym.st_shndx == kShnLivepatch)
      livepatch_syms.emplace_back(elf_strptr(e, symsh.sh_link, sym.st_name));
  }
  for (Elf_Scn* s = elf_nextscn(e, nullptr); s; s = elf_nextscn(e, s)) {
    GElf_Shdr sh;
    gelf_getshdr(s, &sh);
    SectionInfo si{sh.sh_type, sh.sh_flags, sh.sh_info, {}, 0, {}};
    if (sh.sh_type == SHT_RELA) {
      GElf_Shdr tsh;
      gelf_getshdr(elf_getscn(e, sh.sh_info), &tsh);
      si.info_name = elf_strptr(e, shstrndx, tsh.sh_name);
      Elf_Data* d = elf_getdata(s, nullptr);
      si.entries = d->d_size / sh.sh_entsize;
      for (size_t i = 0; i < si.entries; ++i) {
        GElf_Rela r;
        gelf_getrela(d, static_cast<int>(i), &r);
        GElf_Sym sym;
        gelf_getsym(symdata, static_cast<int>(GELF_R_SYM(r.r_info)), &sym);
        si.rela_symbols.emplace_back(elf_strptr(e, symsh.sh_link, sym.st_name));
      }
    }
    secs[elf_strptr(e, shstrndx, sh.sh_name)] = si;
  }
  elf_end(e);
  ::close(fd);
}

class KlpElf : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("nines-klp-elf-" + std::to_string(getpid()));
    fs::create_directories(dir_);
    obj_ = (dir_ / "p.o").string();
    ASSERT_TRUE(write_file_atomic((dir_ / "p.c").string(), R"(
extern int exported_fn(int);
extern int static_helper(int);
extern int module_var;
int new_fn(int x) { return exported_fn(x) + static_helper(x) + module_var; }
)")
                    .ok());
    auto r = run_checked(
        {"gcc", "-O2", "-c", "-fno-pic", "-mcmodel=kernel", "-o", obj_, (dir_ / "p.c").string()});
    ASSERT_TRUE(r.ok()) << r.error().message;
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
  std::string obj_;
};

TEST_F(KlpElf, TurnsUnexportedReferencesIntoLivepatchSymbolsAndSections) {
  auto resolve = [](const std::string& n) -> Result<KlpSymbol> {
    if (n == "module_var") return KlpSymbol{"binfmt_misc", n, 0};
    return KlpSymbol{"vmlinux", n, n == "static_helper" ? 2 : 0};
  };
  auto exported = [](const std::string& n) { return n == "exported_fn"; };
  std::string seen_in_meta;
  auto meta = [&](const std::vector<KlpSymbol>& syms) {
    for (const auto& s : syms) seen_in_meta += s.klp_name() + " ";
    return std::string(R"({"format":1,"kind":"kernel"})");
  };
  auto rep = rewrite_livepatch_module(obj_, exported, resolve, meta);
  ASSERT_TRUE(rep.ok()) << rep.error().message;
  EXPECT_EQ(rep->symbols.size(), 2u);
  EXPECT_NE(seen_in_meta.find(".klp.sym.vmlinux.static_helper,2"), std::string::npos);

  std::map<std::string, SectionInfo> secs;
  std::vector<std::string> lp;
  read_elf(obj_, secs, lp);
  EXPECT_EQ(lp, (std::vector<std::string>{".klp.sym.vmlinux.static_helper,2",
                                          ".klp.sym.binfmt_misc.module_var,0"}));
  // One .klp.rela section per object, for .text, flagged as livepatch relocations that stay
  // in memory after load.
  ASSERT_TRUE(secs.count(".klp.rela.vmlinux..text")) << "sections missing";
  ASSERT_TRUE(secs.count(".klp.rela.binfmt_misc..text"));
  const SectionInfo& v = secs[".klp.rela.vmlinux..text"];
  EXPECT_EQ(v.type, static_cast<uint32_t>(SHT_RELA));
  EXPECT_TRUE(v.flags & kShfRelaLivepatch);
  EXPECT_TRUE(v.flags & SHF_ALLOC);
  EXPECT_EQ(v.info_name, ".text");
  EXPECT_EQ(v.rela_symbols, std::vector<std::string>{".klp.sym.vmlinux.static_helper,2"});
  EXPECT_EQ(secs[".klp.rela.binfmt_misc..text"].rela_symbols,
            std::vector<std::string>{".klp.sym.binfmt_misc.module_var,0"});
  // The ordinary relocations keep only what the module loader resolves.
  ASSERT_TRUE(secs.count(".rela.text"));
  for (const auto& s : secs[".rela.text"].rela_symbols)
    EXPECT_EQ(s.find(".klp.sym."), std::string::npos) << s;
  EXPECT_NE(std::find(secs[".rela.text"].rela_symbols.begin(),
                      secs[".rela.text"].rela_symbols.end(), "exported_fn"),
            secs[".rela.text"].rela_symbols.end());
  // The metadata section is there and not loaded.
  ASSERT_TRUE(secs.count(".nines.meta"));
  EXPECT_FALSE(secs[".nines.meta"].flags & SHF_ALLOC);

  auto again = inspect_livepatch_module(obj_);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->symbols.size(), 2u);
  EXPECT_EQ(again->sections.size(), 2u);
  // Still a valid object for the tools.
  auto ro = run_process({"readelf", "-W", "-S", obj_});
  ASSERT_TRUE(ro.ok());
  EXPECT_EQ(ro->exit_code, 0) << ro->output;
}

TEST_F(KlpElf, AnUnresolvableSymbolStopsTheRewriteWithItsName) {
  auto resolve = [](const std::string& n) -> Result<KlpSymbol> {
    return make_error("symbol '{}' is nowhere", n);
  };
  auto rep = rewrite_livepatch_module(
      obj_, [](const std::string&) { return false; }, resolve,
      [](const std::vector<KlpSymbol>&) { return std::string("{}"); });
  ASSERT_FALSE(rep.ok());
  EXPECT_NE(rep.error().message.find("is nowhere"), std::string::npos);
}

TEST_F(KlpElf, RefusesJumpLabelsOnNonExportedKeysOfAModule) {
  // What static_branch_unlikely(&key) leaves behind: a __jump_table entry against the key.
  std::string src = (dir_ / "j.c").string(), obj = (dir_ / "j.o").string();
  ASSERT_TRUE(write_file_atomic(src,
                                "asm(\".pushsection __jump_table, \\\"aw\\\"\\n"
                                ".quad some_static_key\\n.popsection\");\n")
                  .ok());
  auto cc = run_checked({"gcc", "-c", "-o", obj, src});
  ASSERT_TRUE(cc.ok()) << cc.error().message;
  auto rep = rewrite_livepatch_module(
      obj, [](const std::string&) { return false; },
      [](const std::string& n) -> Result<KlpSymbol> {
        return KlpSymbol{"binfmt_misc", n, 0};
      },
      [](const std::vector<KlpSymbol>&) { return std::string("{}"); });
  ASSERT_FALSE(rep.ok());
  EXPECT_NE(rep.error().message.find("__jump_table refers to 'some_static_key'"), std::string::npos)
      << rep.error().message;
}

TEST_F(KlpElf, AcceptsJumpLabelsOnNonExportedKeysOfVmlinux) {
  // The module loader applies .klp.rela.vmlinux.* before it sets up jump labels.
  std::string src = (dir_ / "jv.c").string(), obj = (dir_ / "jv.o").string();
  ASSERT_TRUE(write_file_atomic(src,
                                "asm(\".pushsection __jump_table, \\\"aw\\\"\\n"
                                ".quad some_static_key\\n.popsection\");\n")
                  .ok());
  auto cc = run_checked({"gcc", "-c", "-o", obj, src});
  ASSERT_TRUE(cc.ok()) << cc.error().message;
  auto rep = rewrite_livepatch_module(
      obj, [](const std::string&) { return false; },
      [](const std::string& n) -> Result<KlpSymbol> {
        return KlpSymbol{"vmlinux", n, 0};
      },
      [](const std::vector<KlpSymbol>&) { return std::string("{}"); });
  ASSERT_TRUE(rep.ok()) << rep.error().message;
  ASSERT_EQ(rep->sections.size(), 1u);
  EXPECT_EQ(rep->sections[0], ".klp.rela.vmlinux.__jump_table");
}

TEST_F(KlpElf, RefusesWhatIsNotARelocatableObject) {
  std::string notelf = (dir_ / "x.txt").string();
  ASSERT_TRUE(write_file_atomic(notelf, "hello").ok());
  auto rep = rewrite_livepatch_module(
      notelf, [](const std::string&) { return true; },
      [](const std::string&) -> Result<KlpSymbol> { return KlpSymbol{}; },
      [](const std::vector<KlpSymbol>&) { return std::string("{}"); });
  ASSERT_FALSE(rep.ok());
  EXPECT_NE(rep.error().message.find(notelf), std::string::npos);
}

}  // namespace
}  // namespace nines::klp
