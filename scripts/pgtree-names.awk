# The JSON key of every field of libpg_query's pg_query.proto whose key is given
# (json_name): what pg_query_parse's JSON calls it. Fields without one (A_Const,
# Integer, String, List, ...) are called by their own name. Output: C initializers
# { "Message", "field", "key" }, one a line, for daemon/pgtree.c.
/^message / { msg = $2 }
/^}/ { msg = "" }
msg != "" && /json_name="/ {
	if (match($0, /[a-z0-9_]+ = [0-9]+/) == 0)
		next
	split(substr($0, RSTART, RLENGTH), f, " ")
	match($0, /json_name="[^"]*"/)
	printf("{ \"%s\", \"%s\", \"%s\" },\n", msg, f[1], substr($0, RSTART + 11, RLENGTH - 12))
}
