/* v1: /proc/cmdline shows a marker line instead of the boot command line. */
#include <linux/seq_file.h>
#include <nines/kpatch.h>

static int nines_cmdline_v1(struct seq_file *m, void *v)
{
	seq_puts(m, "nines-cmdline-v1\n");
	return 0;
}
NINES_REPLACE(cmdline_proc_show, nines_cmdline_v1);
