// Package redis is the connector for Redis stores (spec.type "redis"). The connection Secret holds
// a URL: redis://user:password@host:port/db, or rediss:// for TLS; unix:// sockets are refused, since
// they are files in the operator's own container. Every connection is checked against the egress
// policy. Neither the URL nor the password ever appears in an error.
//
// # Key patterns
//
// spec.keys[].pattern names keys with {identifier} placeholders, e.g. "cart:{userId}" or
// "session:{userId}:*". A placeholder is replaced by the subject's identifier of that name; a
// pattern naming an identifier the subject lacks (or has empty) does not apply to it.
//
//   - A pattern without a glob is one exact key, read with EXISTS and TYPE: the value goes in
//     verbatim and nothing in it is a wildcard.
//   - A pattern ending in "*" after a separator is searched with SCAN MATCH (never KEYS). The
//     identifier values are escaped (a backslash before each of * ? [ ] \ ^ -) so that they match
//     only themselves: a user "a*" matches "session:a*:1" and not "session:ab:1".
//
// A glob is only as precise as its separator: "session:{userId}:*" for the user "a" also matches
// "session:a:b:1", which may be the key of a user "a:b". The connector refuses (KindRejected,
// nothing done) a subject whose value contains the separator after its placeholder, since its
// pattern would match the keys of longer ids; it cannot tell, for a shorter id, a key suffix from
// the rest of another id. Use a separator identifiers never contain; Check warns about separators
// they often do ('.', '@', '-', '_', '+', letters, digits) and about adjacent placeholders.
//
// Patterns are validated with the CRD's own expression (KeyPatternRE) again, for ClusterDataStores
// created before a schema change.
//
// # Operations
//
// Erase unlinks the keys of delete patterns in pipelined batches of 500 and counts only the keys
// UNLINK removed, so a repeated Erase erases zero; keys of retain patterns are counted with their
// reason and left alone. A key that both a retain and a delete pattern match is retained: the
// legal hold wins. Every key type (string, hash, list, set, sorted set, stream) is removed alike.
//
// Collect reads each key by type (GET, HGETALL, LRANGE, SMEMBERS, ZRANGE WITHSCORES, XRANGE) into
// a record whose Key is the key itself and whose Data is {"type", "value"}; values that are not
// UTF-8 are exported in base64 with "encoding": "base64". Retained keys are collected too: they
// are still the subject's data.
//
// Verify counts the keys still matched by delete patterns (Remaining, per pattern) and by retain
// patterns (Retained). Deep verification also SCANs every key of the logical database, up to
// MaxDeepScanKeys (beyond that it fails with KindRejected instead of giving a partial answer), and
// reports under DeepLocation the keys no pattern matched whose NAME holds an identifier value:
// anywhere for values of at least MinContainsRunes runes, else as a whole segment delimited by a
// non-alphanumeric byte. It reads key names only, never values: an identifier inside the value
// of an unrelated key is not found. A finding is a lead for a human, not proof ("a@x.org" is
// also in "a@x.org.uk").
//
// # Servers
//
// Check pings the server, refuses Redis Cluster, and runs each command the mapping needs on a key
// of each pattern's shape that no subject has, so that an ACL lacking EXISTS, SCAN or UNLINK on
// the mapped keys fails Check (KindAuth) rather than an erasure; lacking a read command that only
// access requests need is a warning. A least-privilege ACL user needs:
//
//	+ping +select +info +exists +scan +unlink +type
//	+get +hgetall +lrange +smembers +zrange +xrange   (access requests)
//
// with key patterns covering the mapped keys (+info may be left out: Check then warns that it
// cannot tell whether the server is a cluster).
//
// Redis Cluster is not supported: SCAN on one node sees only that node's keys, so an erasure
// would silently miss the rest. Every operation asks INFO once per client and fails with
// KindMapping on a cluster-enabled server. Sentinel URLs are not supported either; a read-only
// replica fails with KindInvalid.
//
// Errors: refused credentials and NOPERM are KindAuth; refused connections, timeouts, a cancelled
// context and unknown server errors are KindUnavailable (transient); a missing database number
// or a replica is KindInvalid. spec.connection.timeout (default 30s) bounds dialling and each
// command, and the caller's context deadline is honoured as well. Messages from the server are
// scrubbed of identifier values and of echoed command arguments.
package redis
