/* The new function calls a static function of vmlinux (version_proc_show, fs/proc/version.c)
 * and reads a non-exported variable (saved_command_line): both become .klp.sym.vmlinux.*
 * symbols with their relocations in .klp.rela.vmlinux..text. */
#include <linux/init.h>
#include <linux/seq_file.h>
#include <nines/kpatch.h>

NINES_KERNEL_FUNCTION(int, version_proc_show, (struct seq_file *m, void *v));

static int nines_cmdline_static(struct seq_file *m, void *v)
{
	seq_puts(m, "nines-static: ");
	version_proc_show(m, v);
	seq_printf(m, "nines-saved: %s\n", saved_command_line);
	return 0;
}
NINES_REPLACE(cmdline_proc_show, nines_cmdline_static);
