// Rewrites a freshly built livepatch module (.ko) into the form of the kernel's
// livepatch/module-elf-format.rst, and stamps it with the nines metadata:
//
//  - every undefined symbol that the module loader cannot resolve (not exported, per
//    Module.symvers) becomes a livepatch symbol: renamed `.klp.sym.<obj>.<name>,<pos>`,
//    st_shndx = SHN_LIVEPATCH, so the loader leaves it to livepatch;
//  - relocations against those symbols move out of `.rela<sec>` into
//    `.klp.rela.<obj>.<sec>` (SHT_RELA, SHF_RELA_LIVEPATCH | SHF_ALLOC | SHF_INFO_LINK),
//    one section per object and target section. livepatch applies them when <obj> is
//    loaded (at once for vmlinux). SHF_ALLOC keeps them in memory after load: the module
//    loader frees non-alloc sections before the module's init runs klp_enable_patch,
//    and a module object may be loaded much later;
//  - a non-loaded `.nines.meta` section carries the patch's JSON metadata.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/result.h"
#include "klp/symbols.h"

namespace nines::klp {

// SHN_LIVEPATCH and SHF_RELA_LIVEPATCH from include/uapi/linux/elf.h.
inline constexpr uint16_t kShnLivepatch = 0xff20;
inline constexpr uint64_t kShfRelaLivepatch = 0x00100000;

// Decides what an unresolved undefined symbol becomes; an error aborts the rewrite.
using SymbolResolver = std::function<Result<KlpSymbol>(const std::string& name)>;

struct KlpRewriteReport {
  std::vector<KlpSymbol> symbols;     // the livepatch symbols created
  std::vector<std::string> sections;  // the .klp.rela.* sections created
};

// Makes the .nines.meta text once the livepatch symbols are known.
using MetaWriter = std::function<std::string(const std::vector<KlpSymbol>&)>;

// Rewrites the .ko at `path` in place. `exported(name)` says whether the module loader
// resolves the name itself. Fails naming the file and the cause (libelf's message).
Result<KlpRewriteReport> rewrite_livepatch_module(
    const std::string& path, const std::function<bool(const std::string&)>& exported,
    const SymbolResolver& resolve, const MetaWriter& meta_json);

// Reads the names of a .ko's `.klp.sym.*` symbols and `.klp.rela.*` sections (for tests
// and `nines build -v`).
Result<KlpRewriteReport> inspect_livepatch_module(const std::string& path);

}  // namespace nines::klp
