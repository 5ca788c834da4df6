/* <nines/patch.h>: what a user-space live patch includes.
 *
 * A patch is one or more C files compiled by `nines build --target FILE`. Each
 * replacement is marked with NINES_REPLACE(old_function, new_function): once applied,
 * every call to old_function in the running process lands in new_function.
 *
 * The patch may use any function or variable of the target, exported or not, static ones
 * included: declare it `extern` (NINES_TARGET_FUNCTION / NINES_TARGET_VARIABLE do that
 * and read better) and nines resolves it at apply time from the target's symbol table,
 * or from its separate debug file found by build-id. Other undefined symbols resolve
 * against the objects loaded in the process (default symbol versions first).
 *
 * Not supported in patch code: thread-local variables of its own, constructors and
 * destructors (they would never run), C++ exceptions thrown across the patch boundary.
 */
#ifndef NINES_PATCH_H
#define NINES_PATCH_H

#define NINES_CAT_(a, b) a##b
#define NINES_CAT(a, b) NINES_CAT_(a, b)

/* Records "old\0new\0" in the .nines.replace section, which `nines build` reads. The
 * reference to new_function keeps it from being dropped as unused. */
#define NINES_REPLACE(old_function, new_function)                                      \
  __attribute__((used, section(".nines.replace"))) static const char                  \
      NINES_CAT(nines_replace_, __LINE__)[] = #old_function "\0" #new_function;       \
  __attribute__((used)) static void* const NINES_CAT(nines_keep_, __LINE__) =         \
      (void*)&new_function

/* A function of the target, resolved at apply time (static functions included). */
#define NINES_TARGET_FUNCTION(ret, name, args) extern ret name args

/* A variable of the target, resolved at apply time (static variables included). */
#define NINES_TARGET_VARIABLE(type, name) extern type name

#endif /* NINES_PATCH_H */
