/* A pre_patch callback that refuses: the kernel does not enable the patch, the module
 * load fails, and nothing stays loaded. */
#include <linux/seq_file.h>
#include <nines/kpatch.h>

static int nines_cmdline_never(struct seq_file *m, void *v)
{
	seq_puts(m, "nines-never\n");
	return 0;
}
NINES_REPLACE(cmdline_proc_show, nines_cmdline_never);

static int nines_refuse(struct klp_object *obj)
{
	pr_info("nines-callback: refusing\n");
	return -EPERM;
}
NINES_PRE_PATCH(nines_refuse);
