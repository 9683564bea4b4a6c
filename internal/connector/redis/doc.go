// Package redis is the connector for Redis stores (spec.type "redis").
//
// A store's keys are described by patterns such as "session:{userId}:*" or "cart:{userId}". The
// placeholders are replaced by the subject's identifiers; in a pattern that ends in a glob, the
// values are escaped so that they match only themselves ("a*" matches the key "a*", not "ab"), and
// the keys are found with SCAN (never KEYS). A pattern without a glob is an exact key and is read
// directly. Keys are removed with UNLINK, in pipelines, whatever their type (string, hash, list,
// set, sorted set, stream).
//
// When a key matches both a retained and a deleted pattern, the legal hold wins: it is kept.
//
// Deep verification scans every key of the database (at most MaxDeepScanKeys) and reports keys whose
// name contains an identifier verbatim and that no pattern covers. It looks at key names only, not
// at values.
//
// Redis Cluster is not supported: only the keys of the node in the URL would be searched, so Check
// reports a cluster-enabled server as a mapping problem rather than erasing part of the data.
package redis
