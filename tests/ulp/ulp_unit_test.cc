// Unit tests of the user-space patching building blocks: no process is touched.
#include <elf.h>

#include <gtest/gtest.h>

#include "core/strings.h"
#include "elf/elf_file.h"
#include "proc/arch_x86_64.h"
#include "proc/maps.h"
#include "ulp/loader.h"
#include "ulp/patch_object.h"
#include "ulp/registry.h"
#include "ulp/symbols.h"

using namespace nines;

TEST(Maps, ParsesFileAnonymousAndDeletedMappings) {
  auto m = proc::parse_maps(
      "55d0c0a00000-55d0c0a01000 r--p 00000000 08:01 1234 /usr/bin/demo\n"
      "55d0c0a01000-55d0c0a02000 r-xp 00001000 08:01 1234 /usr/bin/demo\n"
      "7f0000000000-7f0000021000 rw-p 00000000 00:00 0 \n"
      "7f0000100000-7f0000101000 r-xp 00000000 fd:02 99 /usr/lib/libx.so.1 (deleted)\n"
      "7ffd1000-7ffd2000 rw-p 00000000 00:00 0                          [stack]\n");
  ASSERT_TRUE(m.ok()) << m.error().message;
  ASSERT_EQ(m->size(), 5u);
  EXPECT_EQ((*m)[1].start, 0x55d0c0a01000u);
  EXPECT_TRUE((*m)[1].exec);
  EXPECT_EQ((*m)[1].offset, 0x1000u);
  EXPECT_EQ((*m)[3].path, "/usr/lib/libx.so.1");
  EXPECT_TRUE((*m)[3].deleted);
  EXPECT_EQ((*m)[3].dev_major, 0xfdu);
  EXPECT_FALSE((*m)[2].file_backed());
  EXPECT_EQ((*m)[4].path, "[stack]");
  auto objs = proc::group_objects(*m);
  ASSERT_EQ(objs.size(), 2u);
  EXPECT_EQ(objs[0].offset0_start, 0x55d0c0a00000u);
  EXPECT_EQ(objs[0].maps.size(), 2u);
}

TEST(Maps, RejectsAMalformedLineNamingIt) {
  auto m = proc::parse_maps("zzzz r-xp 0 08:01 1 /x\n");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().message.find("line 1"), std::string::npos);
}

TEST(Jump, EncodesRel32FromTheEndOfTheInstructionAndRefusesOutOfReach) {
  auto j = arch::encode_jump(0x1000, 0x2000);
  ASSERT_TRUE(j);
  EXPECT_EQ((*j)[0], 0xe9);
  EXPECT_EQ(arch::decode_jump(0x1000, j->data()), 0x2000u);
  auto back = arch::encode_jump(0x2000, 0x1000);
  ASSERT_TRUE(back);
  EXPECT_EQ(arch::decode_jump(0x2000, back->data()), 0x1000u);
  EXPECT_FALSE(arch::encode_jump(0x1000, 0x1000 + (uint64_t{1} << 32)));
}

TEST(Jump, SkipsAnEndbr64AtTheEntry) {
  const uint8_t with[] = {0xf3, 0x0f, 0x1e, 0xfa, 0x55};
  const uint8_t without[] = {0x55, 0x48, 0x89, 0xe5};
  EXPECT_EQ(arch::entry_skip(with, sizeof with), 4u);
  EXPECT_EQ(arch::entry_skip(without, sizeof without), 0u);
}

TEST(SyscallRestart, InterruptedCallsAreRewoundAndMarkedAsNotInASyscall) {
  arch::Regs r{};
  r.orig_rax = 35;  // nanosleep
  r.rax = static_cast<unsigned long long>(-516);  // -ERESTART_RESTARTBLOCK
  r.rip = 0x1002;
  EXPECT_TRUE(arch::normalize_restart(r));
  EXPECT_EQ(r.rip, 0x1000u);
  EXPECT_EQ(r.rax, 219u);  // restart_syscall
  EXPECT_EQ(static_cast<long>(r.orig_rax), -1);
  arch::Regs read{};
  read.orig_rax = 0;
  read.rax = static_cast<unsigned long long>(-512);  // -ERESTARTSYS
  read.rip = 0x2002;
  EXPECT_TRUE(arch::normalize_restart(read));
  EXPECT_EQ(read.rax, 0u);
  EXPECT_EQ(read.rip, 0x2000u);
  arch::Regs user{};
  user.orig_rax = static_cast<unsigned long long>(-1);
  user.rip = 0x3000;
  EXPECT_FALSE(arch::normalize_restart(user));
  EXPECT_EQ(user.rip, 0x3000u);
}

TEST(ChooseBase, PicksAFreeRangeWithinReachOfTheTarget) {
  std::vector<proc::MapEntry> maps;
  auto add = [&](uint64_t s, uint64_t e) {
    proc::MapEntry m;
    m.start = s;
    m.end = e;
    maps.push_back(m);
  };
  add(0x7f0000000000, 0x7f0000100000);  // the target
  add(0x7f0000100000, 0x7f0000200000);
  add(0x7ffff0000000, 0x7ffff0100000);
  auto b = ulp::choose_base(maps, 0x7f0000000000, 0x7f0000200000, 0x3000);
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(*b % 4096, 0u);
  for (const auto& m : maps) EXPECT_TRUE(*b + 0x3000 <= m.start || *b >= m.end) << std::hex << *b;
  EXPECT_LT(*b > 0x7f0000000000 ? *b - 0x7f0000000000 : 0x7f0000200000 - *b, uint64_t{1} << 31);
  auto again = ulp::choose_base(maps, 0x7f0000000000, 0x7f0000200000, 0x3000, {*b});
  ASSERT_TRUE(again.ok());
  EXPECT_NE(*again, *b);
}

TEST(Registry, RoundTripsThroughTheDoubleBufferedImage) {
  ulp::Registry r;
  ulp::AppliedPatch p;
  p.id = "fix-1";
  p.version = 3;
  p.target_name = "libfoo.so.1";
  p.target_build_id = "abcd";
  p.target_path = "/usr/lib/libfoo.so.1";
  p.applied_unix = 1700000000;
  p.base = 0x7f0000000000;
  p.size = 0x3000;
  p.function_details.push_back({"foo", "foo_fixed", 0x1000, 40, 0x1004, "5548", 0x7f0000000100});
  p.functions = {"foo"};
  r.patches.push_back(p);
  std::string text = ulp::registry_to_json(r).dump();
  std::string image(ulp::kRegistrySize, '\0');
  std::string header = ulp::encode_header(1, 7, 0, static_cast<uint32_t>(text.size()));
  image.replace(0, header.size(), header);
  image.replace(ulp::kSlotOffset + ulp::kSlotSize, text.size(), text);
  auto back = ulp::decode_registry(image);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->generation, 7u);
  ASSERT_EQ(back->patches.size(), 1u);
  EXPECT_EQ(back->patches[0].id, "fix-1");
  EXPECT_EQ(back->patches[0].function_details[0].site, 0x1004u);
  EXPECT_EQ(back->patches[0].function_details[0].size, 40u);
  EXPECT_EQ(back->find_by_target("abcd")->id, "fix-1");
}

TEST(Registry, RejectsHostileHeaders) {
  std::string image(ulp::kRegistrySize, '\0');
  EXPECT_FALSE(ulp::decode_registry(image).ok());  // no magic
  std::string h = ulp::encode_header(2, 1, 0, 0);    // slot out of range
  image.replace(0, h.size(), h);
  EXPECT_FALSE(ulp::decode_registry(image).ok());
  h = ulp::encode_header(0, 1, 0xffffffff, 0);       // length out of range
  image.replace(0, h.size(), h);
  EXPECT_FALSE(ulp::decode_registry(image).ok());
  h = ulp::encode_header(0, 1, 5, 0);                // not JSON
  image.replace(0, h.size(), h);
  EXPECT_FALSE(ulp::decode_registry(image).ok());
  EXPECT_FALSE(ulp::decode_registry(image.substr(0, 16)).ok());
}

TEST(Registry, JournalOfAnUncommittedSwitchMarksItInterrupted) {
  std::string image(ulp::kRegistrySize, '\0');
  std::string header = ulp::encode_header(0, 0, 0, 0);  // a registry just created
  image.replace(0, header.size(), header);
  ulp::Journal j;
  j.commit_generation = 1;
  j.image_base = 0x7f0000000000;
  j.image_size = 0x4000;
  j.writes.push_back({0x1004, std::string("\x55\x48\x89\xe5\x90", 5), std::string("\xe9\x01\x02\x03\x04", 5)});
  j.writes.push_back({0x2004, std::string("\x31\xc0\xc3\x90\x90", 5), std::string("\xe9\x05\x06\x07\x08", 5)});
  auto bytes = ulp::encode_journal(j);
  ASSERT_TRUE(bytes.ok()) << bytes.error().message;
  image.replace(ulp::kJournalOffset, bytes->size(), *bytes);
  auto r = ulp::decode_registry(image);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(r->journal.has_value());
  EXPECT_TRUE(r->interrupted());
  EXPECT_EQ(r->journal->image_size, 0x4000u);
  ASSERT_EQ(r->journal->writes.size(), 2u);
  EXPECT_EQ(r->journal->writes[1].site, 0x2004u);
  EXPECT_EQ(r->journal->writes[1].before, j.writes[1].before);
  EXPECT_EQ(r->journal->writes[1].after, j.writes[1].after);
  // Once the header reaches the commit generation, the switch is done, not interrupted.
  std::string doc = R"({"patches":[],"retired":[]})";
  header = ulp::encode_header(0, 1, static_cast<uint32_t>(doc.size()), 0);
  image.replace(0, header.size(), header);
  image.replace(ulp::kSlotOffset, doc.size(), doc);
  r = ulp::decode_registry(image);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->journal.has_value());
  EXPECT_FALSE(r->interrupted());
  // Cleared magic: no journal.
  image.replace(ulp::kJournalOffset, 8, std::string(8, '\0'));
  EXPECT_FALSE(ulp::decode_registry(image)->journal.has_value());
}

TEST(Registry, HostileJournalsAreRefused) {
  ulp::Journal j;
  j.commit_generation = 1;
  j.writes.assign(ulp::kJournalMaxWrites + 1, {0x1000, "abcde", "fghij"});
  EXPECT_FALSE(ulp::encode_journal(j).ok());  // more than the page holds
  j.writes.assign(1, {0x1000, "abcde", "fgh"});
  EXPECT_FALSE(ulp::encode_journal(j).ok());  // before and after differ in length
  j.writes.assign(1, {0x1000, "abcde", "fghij"});
  std::string image(ulp::kRegistrySize, '\0');
  std::string header = ulp::encode_header(0, 0, 0, 0);
  image.replace(0, header.size(), header);
  std::string bytes = *ulp::encode_journal(j);
  uint32_t huge = 100000;
  bytes.replace(32, 4, reinterpret_cast<const char*>(&huge), 4);  // count out of range
  image.replace(ulp::kJournalOffset, bytes.size(), bytes);
  EXPECT_FALSE(ulp::decode_registry(image).ok());
  bytes = *ulp::encode_journal(j);
  bytes[48 + 8] = 17;  // a write longer than 16 bytes
  image.replace(ulp::kJournalOffset, bytes.size(), bytes);
  EXPECT_FALSE(ulp::decode_registry(image).ok());
}

TEST(PatchMeta, RoundTripsAndNamesTheBadField) {
  ulp::PatchMeta m;
  m.id = "x";
  m.target_name = "libfoo.so";
  m.target_build_id = "00ff";
  m.functions.push_back({"a", "b", 1, 2, 3});
  auto back = ulp::meta_from_json(ulp::meta_to_json(m));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->functions[0].replacement_offset, 3u);
  auto j = ulp::meta_to_json(m);
  j["target"]["build_id"] = "xyz";
  auto bad = ulp::meta_from_json(j);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("build_id"), std::string::npos);
  j = ulp::meta_to_json(m);
  j["kind"] = "kernel";
  EXPECT_FALSE(ulp::meta_from_json(j).ok());
}

TEST(ElfReader, ReadsBuildIdSymbolsAndLocalsOfTheFixtureLibrary) {
  auto f = elf::ElfFile::open(std::string(FIXTURES_DIR) + "/libulptarget.so");
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ(f->elf_type(), ET_DYN);
  EXPECT_EQ(f->build_id().size(), 20u);
  auto syms = ulp::SymbolTable::of(*f);
  auto lv = syms.find("lib_value", "lib");
  ASSERT_TRUE(lv.ok());
  EXPECT_EQ(lv->type, STT_FUNC);
  EXPECT_GT(lv->size, 5u);
  auto scaled = syms.find("scaled", "lib");  // a static function
  ASSERT_TRUE(scaled.ok()) << scaled.error().message;
  EXPECT_EQ(scaled->bind, STB_LOCAL);
  EXPECT_FALSE(syms.find("nope", "lib").ok());
}

TEST(ElfReader, ReadsDefaultSymbolVersionsOfLibc) {
  auto f = elf::ElfFile::open("/lib/x86_64-linux-gnu/libc.so.6");
  ASSERT_TRUE(f.ok()) << f.error().message;
  int defaults = 0, hidden = 0;
  for (const auto& s : f->dynamic_symbols()) {
    if (s.name != "memcpy" || !s.defined()) continue;
    (s.version_hidden ? hidden : defaults)++;
    EXPECT_TRUE(starts_with(s.version, "GLIBC_"));
  }
  EXPECT_EQ(defaults, 1);  // memcpy@@GLIBC_2.14
  EXPECT_GE(hidden, 1);    // memcpy@GLIBC_2.2.5
}

TEST(ElfReader, RefusesTruncatedAndNonElfInput) {
  EXPECT_FALSE(elf::ElfFile::from_bytes("not an elf").ok());
  auto f = elf::ElfFile::open(std::string(FIXTURES_DIR) + "/libulptarget.so");
  ASSERT_TRUE(f.ok());
  std::string cut(f->bytes().substr(0, 200));
  EXPECT_FALSE(elf::ElfFile::from_bytes(cut).ok());
}
