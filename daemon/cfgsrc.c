/* TEMPORARY stub until branch cfgsrc lands */

#include "cfgsrc.h"
#include <stdlib.h>
#include <sys/mman.h>
#include "config.h"
#include "tls.h"
struct cfgsrc { int x; };
static struct cfgsrc one;
struct cfgsrc *cfgsrc_disk(void) { return &one; }
struct cfgsrc *cfgsrc_from_memfd(int fd, char *err, size_t errlen) { (void)fd; (void)err; (void)errlen; return &one; }
int cfgsrc_to_memfd(const struct cfgsrc *src, int *ret_fd, char *err, size_t errlen) { (void)src; (void)err; (void)errlen; *ret_fd = memfd_create("pgtether-config", MFD_CLOEXEC); return *ret_fd < 0 ? -1 : 0; }
void cfgsrc_free(struct cfgsrc *src) { (void)src; }
int config_load_src(const char *path, struct cfgsrc *src, unsigned flags, struct config *ret, char *err) { (void)src; (void)flags; return config_load(path, ret, err); }
int tls_prepare_src(struct config *c, struct cfgsrc *src, char *err) { (void)src; return tls_prepare(c, err); }
