/*
 * What the server sends in a relaying session: the real relay (session_event,
 * relay.c) and server_side_scan / server_side_lookup_scan under each rule shape of
 * session_fixture.c (masks: RowDescription and DataRow rewriting, ErrorResponse and
 * NoticeResponse withheld or turned into denials, ParameterStatus, the catalog
 * lookups' answers), after client messages that put the books the server side
 * reads in a realistic state (owed answers, Describes pgtether added, denied
 * statements, tainted batches). The canned server answers pgtether's own catalog
 * queries only when asked to; the rest is the input's. What reaches the client is
 * well-framed, a masking session passes no server DETAIL, the books stay bounded,
 * nothing is left behind (session_fixture.h).
 *
 * Input: byte 0: flags (session_fixture.h; FX_CANNED here: the catalog queries
 * are answered by the canned server, else by the input); byte 1: chunk size of the
 * server's bytes (0: all at once); bytes 2-3: n, big-endian (its top bit set: the
 * server closes its end after its last byte, fx_server_close); then n bytes the
 * client sends first, then the server's bytes.
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
	size_t chunk, n;

	if (size < 4)
		return 0;
	chunk = data[1] ? data[1] : size;
	n = (size_t)(data[2] & 0x7f) << 8 | data[3];
	if (n > size - 4)
		n = size - 4;
	/* the canned server answers no client statement here: only, if at all, the
	 * catalog queries */
	fx_begin((data[0] & ~(FX_CANNED | FX_LOOKUPS)) | (data[0] & FX_CANNED ? FX_LOOKUPS : 0));
	fx_client(data + 4, n);
	for (size_t at = 4 + n; at < size; at += chunk) {
		if ((data[0] & FX_RELOAD) && at == 4 + n)
			fx_reload(); /* between the client's messages and the answers */
		fx_server(data + at, size - at < chunk ? size - at : chunk);
	}
	if (data[2] & 0x80)
		fx_server_close();
	fx_end();
	return 0;
}
