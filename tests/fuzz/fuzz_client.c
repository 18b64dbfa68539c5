/*
 * What a workload's client sends once its session relays: the real relay
 * (session_event, relay.c) and client_side_filter under each rule shape of
 * session_fixture.c (statement classes, table rules with search_path lookups,
 * approvals decided by an approver, read-only, masks, recording), with a canned
 * PostgreSQL answering everything that goes upstream. What goes upstream is
 * well-framed and never a FunctionCall, the books stay bounded, and the session
 * leaves nothing behind (session_fixture.h).
 *
 * Input: byte 0: flags (session_fixture.h: rule, recorded, role hint, approve or
 * deny, a reload halfway); byte 1: chunk size (0: all at once); then the client's bytes.
 */
#include "fuzz.h"
#include "session_fixture.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fx_init();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t chunk;

	if (size < 2)
		return 0;
	chunk = data[1] ? data[1] : size;
	fx_begin(data[0] | FX_CANNED);
	for (size_t at = 2; at < size; at += chunk) {
		if ((data[0] & FX_RELOAD) && at <= 2 + (size - 2) / 2 && at + chunk > 2 + (size - 2) / 2)
			fx_reload();
		fx_client(data + at, size - at < chunk ? size - at : chunk);
	}
	fx_end();
	return 0;
}
