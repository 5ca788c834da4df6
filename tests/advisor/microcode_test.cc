// Microcode: Intel and AMD container files built by the test, parsed by the advisor.
#include "advisor/microcode.h"

#include <gtest/gtest.h>

#include "fixtures.h"

namespace nines::advisor {
namespace {

using namespace nines::advisor::testing;

// Family 6 model 0x8f stepping 8 (Sapphire Rapids): CPUID(1).EAX 0x000806f8.
constexpr uint32_t kIntelSig = 0x000806f8;
// Family 0x19 model 0x01 stepping 1 (Milan): CPUID(1).EAX 0x00a00f11.
constexpr uint32_t kAmdSig = 0x00a00f11;

TEST(CpuInfo, SignatureMatchesCpuid) {
  auto cpus = parse_cpuinfo(cpuinfo_text("GenuineIntel", 6, 0x8f, 8, "0x2b000181"));
  ASSERT_EQ(cpus.size(), 1u) << "one entry per physical package";
  EXPECT_EQ(cpus[0].signature(), kIntelSig);
  EXPECT_EQ(cpus[0].microcode, 0x2b000181u);
  auto amd = parse_cpuinfo(cpuinfo_text("AuthenticAMD", 25, 1, 1, "0xa0011d1"));
  EXPECT_EQ(amd[0].signature(), kAmdSig);
}

TEST(IntelMicrocode, PicksTheHighestRevisionForThisSignatureAndPlatform) {
  std::string f = intel_microcode({{kIntelSig, 0x87, 0x2b000500},
                                   {kIntelSig, 0x10, 0x2b000900},   // other platform
                                   {0x000906ea, 0x87, 0x2b000999},  // other CPU
                                   {kIntelSig, 0x87, 0x2b000600}});
  EXPECT_EQ(intel_best_revision(f, kIntelSig, 0x01), 0x2b000600u);
  EXPECT_EQ(intel_best_revision(f, kIntelSig, 0), 0x2b000900u) << "unknown platform: any";
  EXPECT_FALSE(intel_best_revision(f, 0x000a0671, 0x01));
}

TEST(IntelMicrocode, ExtendedSignatureTableMatches) {
  std::string f = intel_microcode({{0x000806f6, 0x87, 0x2b000700, {{kIntelSig, 0x87}}}});
  EXPECT_EQ(intel_best_revision(f, kIntelSig, 0x01), 0x2b000700u);
}

TEST(IntelMicrocode, TruncatedOrCorruptFilesAreBoundsChecked) {
  std::string f = intel_microcode({{kIntelSig, 0x87, 0x2b000500}});
  EXPECT_FALSE(intel_best_revision(f.substr(0, 40), kIntelSig, 0));
  std::string bad = f;
  put32(bad, 32, 0xfffffff0);  // totalsize beyond the file
  EXPECT_FALSE(intel_best_revision(bad, kIntelSig, 0));
  std::string ext = intel_microcode({{0x1, 0x1, 0x1, {{kIntelSig, 0x87}}}});
  put32(ext, 48 + 1024, 0x7fffffff);  // absurd extended count
  EXPECT_FALSE(intel_best_revision(ext, kIntelSig, 0));
}

TEST(AmdMicrocode, EquivalenceTableThenHighestPatch) {
  std::string f = amd_microcode({{0x00a00f10, 0xa010}, {kAmdSig, 0xa011}},
                                {{0xa011, 0x0a0011d1}, {0xa010, 0x0a001079}, {0xa011, 0x0a0011d5}});
  EXPECT_EQ(amd_best_revision(f, kAmdSig), 0x0a0011d5u);
  EXPECT_EQ(amd_best_revision(f, 0x00a00f10), 0x0a001079u);
  EXPECT_FALSE(amd_best_revision(f, 0x00b00f21));
}

TEST(AmdMicrocode, BadMagicAndTruncationAreRejected) {
  std::string f = amd_microcode({{kAmdSig, 0xa011}}, {{0xa011, 0x0a0011d5}});
  EXPECT_FALSE(amd_best_revision("XXXX" + f.substr(4), kAmdSig));
  EXPECT_FALSE(amd_best_revision(f.substr(0, 20), kAmdSig));
  std::string cut = f.substr(0, f.size() - 100);  // last patch section truncated
  EXPECT_FALSE(amd_best_revision(cut, kAmdSig));
}

struct FirmwareRoot {
  TempDir dir;
  FirmwareRoot() {
    mkdirs(dir / "lib/firmware/intel-ucode");
    mkdirs(dir / "lib/firmware/amd-ucode");
  }
};

TEST(CheckMicrocode, IntelOlderLoadedIsObsolete) {
  FirmwareRoot r;
  write_file(r.dir / "lib/firmware/intel-ucode/06-8f-08",
             intel_microcode({{kIntelSig, 0x87, 0x2b000600}}));
  MicrocodeFacts m = check_microcode(Root(r.dir.path()),
                                     cpuinfo_text("GenuineIntel", 6, 0x8f, 8, "0x2b000500"), 0x1);
  EXPECT_EQ(m.status, MicrocodeStatus::kObsolete);
  EXPECT_EQ(m.current, 0x2b000500u);
  EXPECT_EQ(m.available, 0x2b000600u);
  EXPECT_EQ(m.source, r.dir / "lib/firmware/intel-ucode/06-8f-08");
}

TEST(CheckMicrocode, IntelSameLoadedIsCurrent) {
  FirmwareRoot r;
  write_file(r.dir / "lib/firmware/intel-ucode/06-8f-08",
             intel_microcode({{kIntelSig, 0x87, 0x2b000600}}));
  MicrocodeFacts m =
      check_microcode(Root(r.dir.path()), cpuinfo_text("GenuineIntel", 6, 0x8f, 8, "0x2b000600"));
  EXPECT_EQ(m.status, MicrocodeStatus::kCurrent);
}

TEST(CheckMicrocode, AmdOlderLoadedIsObsoleteAcrossFamilyFiles) {
  FirmwareRoot r;
  write_file(r.dir / "lib/firmware/amd-ucode/microcode_amd_fam17h.bin",
             amd_microcode({{0x00830f10, 0x8310}}, {{0x8310, 0x08301055}}));
  write_file(r.dir / "lib/firmware/amd-ucode/microcode_amd_fam19h.bin",
             amd_microcode({{kAmdSig, 0xa011}}, {{0xa011, 0x0a0011d5}}));
  MicrocodeFacts m =
      check_microcode(Root(r.dir.path()), cpuinfo_text("AuthenticAMD", 25, 1, 1, "0xa0011d1"));
  EXPECT_EQ(m.status, MicrocodeStatus::kObsolete);
  EXPECT_EQ(m.available, 0x0a0011d5u);
  EXPECT_EQ(format_revision(m.vendor, *m.available), "0x0a0011d5");
}

TEST(CheckMicrocode, NothingOfferedIsCurrentAsInNeedrestart) {
  FirmwareRoot r;
  MicrocodeFacts m =
      check_microcode(Root(r.dir.path()), cpuinfo_text("AuthenticAMD", 25, 1, 1, "0xa0011d1"));
  EXPECT_EQ(m.status, MicrocodeStatus::kCurrent);
  EXPECT_FALSE(m.available);
}

TEST(CheckMicrocode, OfferedButLoadedRevisionUnknownIsUnknown) {
  FirmwareRoot r;
  write_file(r.dir / "lib/firmware/intel-ucode/06-8f-08",
             intel_microcode({{kIntelSig, 0x87, 0x2b000600}}));
  std::string text = cpuinfo_text("GenuineIntel", 6, 0x8f, 8, "0x2b000600");
  for (size_t p; (p = text.find("microcode\t: 0x2b000600\n")) != std::string::npos;)
    text.erase(p, 23);
  MicrocodeFacts m = check_microcode(Root(r.dir.path()), text);
  EXPECT_EQ(m.status, MicrocodeStatus::kUnknown);
}

TEST(CheckMicrocode, VirtualMachineIsFlagged) {
  FirmwareRoot r;
  MicrocodeFacts m =
      check_microcode(Root(r.dir.path()), cpuinfo_text("AuthenticAMD", 25, 1, 1, "0x1", true));
  EXPECT_TRUE(m.virtual_machine);
}

}  // namespace
}  // namespace nines::advisor
