// /proc/PID/stat (src/proc/stat.h): the fields after a comm that holds spaces and
// parentheses, malformed text, and this test's own process.
#include "proc/stat.h"

#include <gtest/gtest.h>
#include <unistd.h>

namespace nines::proc {
namespace {

// 52 fields as Linux 6.x writes them; comm "a) (b c" holds ") (" and spaces.
constexpr std::string_view kStat =
    "4711 (a) (b c) S 1 4711 4711 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 3 0 123456 "
    "987654321 200 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 "
    "0 0 0\n";

TEST(Stat, ReadsStateStartAndSizeAfterTheLastParenthesis) {
  auto s = parse_stat(kStat);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->state, 'S');
  EXPECT_EQ(s->start_ticks, 123456u);
  EXPECT_EQ(s->vsize, 987654321u);
  EXPECT_TRUE(s->alive());
}

TEST(Stat, ZombiesAndDeadTasksAreNotAlive) {
  std::string z(kStat);
  z[z.rfind(')') + 2] = 'Z';
  EXPECT_FALSE(parse_stat(z)->alive());
  z[z.rfind(')') + 2] = 'X';
  EXPECT_FALSE(parse_stat(z)->alive());
}

TEST(Stat, MalformedTextIsRefused) {
  EXPECT_FALSE(parse_stat(""));
  EXPECT_FALSE(parse_stat("4711 (no closing"));
  EXPECT_FALSE(parse_stat("4711 (x)"));
  EXPECT_FALSE(parse_stat("4711 (x) S 1 2 3"));  // too short
  std::string bad(kStat);
  bad.replace(bad.find("123456"), 6, "12x456");
  EXPECT_FALSE(parse_stat(bad));
}

TEST(Stat, ReadsThisProcessAndItsMainThread) {
  auto self = read_stat(getpid());
  ASSERT_TRUE(self);
  EXPECT_TRUE(self->alive());
  EXPECT_GT(self->vsize, 0u);
  auto task = read_task_stat(getpid(), getpid());
  ASSERT_TRUE(task);
  EXPECT_EQ(task->start_ticks, self->start_ticks);
  EXPECT_FALSE(read_stat(-1));
}

}  // namespace
}  // namespace nines::proc
