// ELF notes (src/elf/notes.h): the one reader of the build-id note, on hand-made note areas
// (well formed, truncated, hostile sizes) and on a real object built by gcc.
#include "elf/notes.h"

#include <elf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "core/fd.h"
#include "core/subprocess.h"
#include "elf/elf_file.h"

namespace nines::elf {
namespace {

void put32(std::string& s, uint32_t v) { s.append(reinterpret_cast<const char*>(&v), 4); }

// namesz, descsz, type, then name and desc padded to 4.
std::string note(uint32_t type, std::string_view name_with_nul, std::string_view desc) {
  std::string s;
  put32(s, static_cast<uint32_t>(name_with_nul.size()));
  put32(s, static_cast<uint32_t>(desc.size()));
  put32(s, type);
  s += name_with_nul;
  s.append((4 - name_with_nul.size() % 4) % 4, '\0');
  s += desc;
  s.append((4 - desc.size() % 4) % 4, '\0');
  return s;
}

TEST(Notes, ReadsEveryNoteWithItsNameWithoutTheNul) {
  std::string area = note(1, std::string_view("Linux\0", 6), "\1\2\3") +
                     note(NT_GNU_BUILD_ID, std::string_view("GNU\0", 4), "\xde\xad\xbe\xef");
  auto notes = read_notes(area);
  ASSERT_EQ(notes.size(), 2u);
  EXPECT_EQ(notes[0].name, "Linux");
  EXPECT_EQ(notes[0].desc, std::string_view("\1\2\3"));
  EXPECT_EQ(notes[1].type, uint32_t{NT_GNU_BUILD_ID});
  EXPECT_EQ(notes[1].name, "GNU");
}

TEST(Notes, FindsTheBuildIdAfterAnUnrelatedNote) {
  std::string area = note(1, std::string_view("Linux\0", 6), "\1\2\3\4") +
                     note(NT_GNU_BUILD_ID, std::string_view("GNU\0", 4), "\xde\xad\xbe\xef");
  auto id = find_build_id_note(area);
  ASSERT_TRUE(id);
  EXPECT_EQ(*id, (std::vector<uint8_t>{0xde, 0xad, 0xbe, 0xef}));
}

TEST(Notes, ABuildIdTypeUnderAnotherNameIsNotTheBuildId) {
  std::string area = note(NT_GNU_BUILD_ID, std::string_view("Go\0\0", 4), "\1\2\3\4");
  EXPECT_FALSE(find_build_id_note(area));
}

TEST(Notes, TruncatedOrHostileAreasYieldWhatFitsAndNeverReadPastTheEnd) {
  std::string good = note(NT_GNU_BUILD_ID, std::string_view("GNU\0", 4), "\xde\xad\xbe\xef");
  for (size_t n = 0; n < good.size(); ++n)
    EXPECT_FALSE(find_build_id_note(good.substr(0, n))) << "truncated to " << n;
  std::string huge;
  put32(huge, 0xfffffff0u);  // namesz near 4 GiB: must not wrap around
  put32(huge, 4);
  put32(huge, NT_GNU_BUILD_ID);
  huge += "GNU";
  EXPECT_TRUE(read_notes(huge).empty());
  std::string desc_too_long;
  put32(desc_too_long, 4);
  put32(desc_too_long, 0xffffffffu);
  put32(desc_too_long, NT_GNU_BUILD_ID);
  desc_too_long += std::string("GNU\0", 4);
  EXPECT_FALSE(find_build_id_note(desc_too_long));
}

TEST(Notes, TheProbeAndTheFullParseAgreeOnAnObjectFromGcc) {
  char dir[] = "/tmp/nines-notes-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string src = std::string(dir) + "/x.c", so = std::string(dir) + "/x.so";
  ASSERT_TRUE(write_file_atomic(src, "int f(void) { return 1; }\n").ok());
  ASSERT_TRUE(run_checked({"gcc", "-shared", "-fPIC", "-Wl,--build-id=sha1", src, "-o", so}).ok());
  auto full = ElfFile::open(so);
  ASSERT_TRUE(full.ok()) << full.error().message;
  EXPECT_EQ(full->build_id().size(), 20u);
  auto fd = Fd::open(so, O_RDONLY);
  ASSERT_TRUE(fd.ok());
  auto probed = read_build_id(fd->get());
  ASSERT_TRUE(probed);
  EXPECT_EQ(*probed, full->build_id());
  std::system((std::string("rm -rf ") + dir).c_str());
}

}  // namespace
}  // namespace nines::elf
