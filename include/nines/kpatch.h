/* <nines/kpatch.h>: what a kernel live patch includes.
 *
 * A kernel patch is one or more C files built by `nines build --kernel RELEASE` into a
 * livepatch module (klp) against the exact headers of that kernel. The sources are
 * compiled as one translation unit after <linux/module.h>, <linux/kernel.h> and
 * <linux/livepatch.h>, so replacement functions may (and should) be static.
 *
 *   NINES_REPLACE(old, new)              replace vmlinux function `old` by `new`
 *   NINES_REPLACE_IN(object, old, new)   replace `old` of loadable module `object`; it is
 *                                        patched when the module loads, before or after
 *   NINES_KSYM(object, symbol, pos)      say where a static symbol lives when its name is
 *                                        not unique: object (vmlinux or a module) and its
 *                                        1-based position among same-named symbols
 *   NINES_PRE_PATCH(fn) NINES_POST_PATCH(fn) NINES_PRE_UNPATCH(fn) NINES_POST_UNPATCH(fn)
 *   NINES_PRE_PATCH_IN(object, fn) ...   callbacks (struct klp_object *) of vmlinux or of
 *                                        a module object (see livepatch/callbacks.rst)
 *
 * The new code may call or read static and non-exported kernel symbols: declare them
 * `extern` (NINES_KERNEL_FUNCTION / NINES_KERNEL_VARIABLE); the builder turns the
 * references into .klp.rela.* relocations against .klp.sym.* symbols that the kernel
 * resolves when the patched object is loaded (livepatch/module-elf-format.rst).
 * Shadow variables are the kernel's own API: klp_shadow_get_or_alloc() and friends.
 *
 * Every kernel patch is cumulative (.replace = true): it replaces any earlier nines patch
 * in one transition, so version N+1 must contain every fix of version N.
 */
#ifndef NINES_KPATCH_H
#define NINES_KPATCH_H

#ifndef NINES_PATCH_H
#define NINES_PATCH_H /* the user-space <nines/patch.h> is not for kernel patches */
#endif

/* The markers are read from the source text by `nines build`; in C they only check that
 * the replacement exists and keep statements legal at file scope. */
#define NINES_REPLACE(old, new) _Static_assert(sizeof(&(new)) != 0, "nines: " #old)
#define NINES_REPLACE_IN(object, old, new) \
  _Static_assert(sizeof(&(new)) != 0, "nines: " #object ":" #old)
#define NINES_KSYM(object, symbol, pos) _Static_assert((pos) > 0, "nines: " #symbol)

#define NINES_PRE_PATCH(fn) _Static_assert(sizeof(&(fn)) != 0, "nines")
#define NINES_POST_PATCH(fn) _Static_assert(sizeof(&(fn)) != 0, "nines")
#define NINES_PRE_UNPATCH(fn) _Static_assert(sizeof(&(fn)) != 0, "nines")
#define NINES_POST_UNPATCH(fn) _Static_assert(sizeof(&(fn)) != 0, "nines")
#define NINES_PRE_PATCH_IN(object, fn) NINES_PRE_PATCH(fn)
#define NINES_POST_PATCH_IN(object, fn) NINES_POST_PATCH(fn)
#define NINES_PRE_UNPATCH_IN(object, fn) NINES_PRE_UNPATCH(fn)
#define NINES_POST_UNPATCH_IN(object, fn) NINES_POST_UNPATCH(fn)

/* A kernel function or variable that is not exported (static ones included). */
#define NINES_KERNEL_FUNCTION(ret, name, args) extern ret name args
#define NINES_KERNEL_VARIABLE(type, name) extern type name

#endif /* NINES_KPATCH_H */
