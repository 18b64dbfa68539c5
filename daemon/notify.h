/*
 * The service manager notification protocol (sd_notify(3)) without libsystemd: one
 * datagram of "KEY=VALUE\n" lines to the unix socket named by $NOTIFY_SOCKET
 * ("@name" for the abstract namespace). Without $NOTIFY_SOCKET it does nothing.
 */
#ifndef PGTETHER_NOTIFY_H
#define PGTETHER_NOTIFY_H

/* Sends state ("READY=1", "STOPPING=1", ...). 0 when sent or when no manager listens
 * for it, -errno when $NOTIFY_SOCKET is set but the datagram could not be sent. */
int notify_send(const char *state);

/* "RELOADING=1" with the MONOTONIC_USEC= stamp that Type=notify-reload expects. */
int notify_reloading(void);

#endif
