/* TEMPORARY stub until branch cfgsrc lands */
#ifndef PGTETHER_CFGSRC_H
#define PGTETHER_CFGSRC_H
#include <stddef.h>
struct config;
struct cfgsrc;
#define CONFIG_LOAD_WORKER 1u
struct cfgsrc *cfgsrc_disk(void);
struct cfgsrc *cfgsrc_from_memfd(int fd, char *err, size_t errlen);
int cfgsrc_to_memfd(const struct cfgsrc *src, int *ret_fd, char *err, size_t errlen);
void cfgsrc_free(struct cfgsrc *src);
int config_load_src(const char *path, struct cfgsrc *src, unsigned flags, struct config *ret, char *err);
int tls_prepare_src(struct config *c, struct cfgsrc *src, char *err);
#endif
