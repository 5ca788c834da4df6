/* The process the expat end-to-end tests patch. It loads the libexpat given as argv[1]
 * with dlopen (the test builds that library itself) and answers one-line commands:
 *   negative        -> "status=S error=E": XML_ParseBuffer with len -1 (CVE-2024-45490)
 *   parse TEXT      -> "status=S error=E elements=N": XML_Parse of TEXT, final
 *   encoding NAME TEXT -> "status=S error=E elements=N": XML_Parse of TEXT by a parser
 *                     created for the encoding NAME
 *   version         -> "version=V": XML_ExpatVersion()
 *   exit
 * It prints "ready pid=PID" once loaded.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef void* Parser;
static Parser (*create)(const char*);
static void (*parser_free)(Parser);
static void* (*get_buffer)(Parser, int);
static int (*parse_buffer)(Parser, int, int);
static int (*parse)(Parser, const char*, int, int);
static int (*error_code)(Parser);
static void (*set_start)(Parser, void (*)(void*, const char*, const char**));
static void (*set_user_data)(Parser, void*);
static const char* (*expat_version)(void);

static void on_start(void* ud, const char* name, const char** atts) {
  (void)name;
  (void)atts;
  ++*(int*)ud;
}

static void* must(void* lib, const char* name) {
  void* f = dlsym(lib, name);
  if (!f) {
    fprintf(stderr, "probe: no %s\n", name);
    exit(2);
  }
  return f;
}

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  void* lib = dlopen(argv[1], RTLD_NOW);
  if (!lib) {
    fprintf(stderr, "probe: %s\n", dlerror());
    return 2;
  }
  create = (Parser(*)(const char*))must(lib, "XML_ParserCreate");
  parser_free = (void (*)(Parser))must(lib, "XML_ParserFree");
  get_buffer = (void* (*)(Parser, int))must(lib, "XML_GetBuffer");
  parse_buffer = (int (*)(Parser, int, int))must(lib, "XML_ParseBuffer");
  parse = (int (*)(Parser, const char*, int, int))must(lib, "XML_Parse");
  error_code = (int (*)(Parser))must(lib, "XML_GetErrorCode");
  set_start = (void (*)(Parser, void (*)(void*, const char*, const char**)))must(lib, "XML_SetStartElementHandler");
  set_user_data = (void (*)(Parser, void*))must(lib, "XML_SetUserData");
  expat_version = (const char* (*)(void))must(lib, "XML_ExpatVersion");
  setvbuf(stdout, NULL, _IOLBF, 0);
  printf("ready pid=%d\n", (int)getpid());
  char line[4096];
  while (fgets(line, sizeof line, stdin)) {
    line[strcspn(line, "\n")] = 0;
    if (strcmp(line, "exit") == 0) break;
    if (strcmp(line, "version") == 0) {
      printf("version=%s\n", expat_version());
    } else if (strcmp(line, "negative") == 0) {
      Parser p = create(NULL);
      get_buffer(p, 64);
      int st = parse_buffer(p, -1, 0);
      printf("status=%d error=%d\n", st, error_code(p));
      parser_free(p);
    } else if (strncmp(line, "parse ", 6) == 0 || strncmp(line, "encoding ", 9) == 0) {
      const char* text = line + 6;
      const char* encoding = NULL;
      if (line[0] == 'e') {
        char* space = strchr(line + 9, ' ');
        if (!space) {
          printf("usage: encoding NAME TEXT\n");
          continue;
        }
        *space = 0;
        encoding = line + 9;
        text = space + 1;
      }
      Parser p = create(encoding);
      int elements = 0;
      set_user_data(p, &elements);
      set_start(p, on_start);
      int st = parse(p, text, (int)strlen(text), 1);
      printf("status=%d error=%d elements=%d\n", st, error_code(p), elements);
      parser_free(p);
    } else {
      printf("unknown command\n");
    }
  }
  return 0;
}
