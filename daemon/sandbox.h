/* TEMPORARY stub until branch sandbox lands */
#ifndef PGTETHER_SANDBOX_H
#define PGTETHER_SANDBOX_H
#include <stddef.h>
#include <sys/types.h>
int sandbox_user(const char *name, uid_t *uid, gid_t *gid, char *err, size_t errlen);
int sandbox_preload(char *err, size_t errlen);
int sandbox_enter(uid_t uid, gid_t gid, char *err, size_t errlen);
#endif
