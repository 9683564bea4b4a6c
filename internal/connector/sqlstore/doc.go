// Package sqlstore is the dialect-neutral part of the PostgreSQL, MySQL and SQLite connectors:
// resolving a mapping against the catalog, building statements, and the erase / verify / collect
// / check logic. The dialect packages (internal/connector/postgres, mysql, sqlite) supply a
// Dialect and register a Provider.
//
// # Names and values
//
// Table and column names come only from the spec, are checked again against the CRD pattern
// and quoted for the dialect. Values are always bound parameters.
//
// # Matching
//
// A row matches when any of the table's match columns equals any value of the subject's identifier
// of that name (Request.AllValues: the Secret's value and further ones, derived ones included). Identifiers the subject does not have (or has empty) are skipped; a table none of whose
// identifiers the subject has is skipped. Equality is exact: no LIKE, no case or accent folding,
// no trailing-space padding, no numeric coercion ("042" does not match 42). A value the column
// cannot hold at all (a non-integer for an integer column, NUL in PostgreSQL text) matches
// nothing rather than failing.
//
// # Linked data
//
// A mapping's provides columns give derived identifiers (derive.go); values a row that is not the
// subject's also holds are shared and select nothing (shared.go); mappings of one table rank
// retain > delete > mask (links.go); a linked erasure runs in foreign-key order and refuses a
// delete an unmapped table's key blocks (order.go); Check warns about coverage (coverage.go).
//
// # Mask state
//
// A masked column is in its masked state when it is NULL (for every strategy: NULL holds
// nothing), equals v1alpha1.RedactedMarker (redact), or holds 64 lower-case hex digits (hash:
// what the salted SHA-256 writes). Erase rewrites only the columns not yet in that state, of
// matching rows that have at least one, so a second erasure changes nothing and a hash is never
// hashed again. The price of the hash rule: a value that already is 64 lower-case hex digits is
// taken for a hash and left alone.
//
// # Verify
//
// Remaining counts, per table:
//   - delete: matching rows;
//   - mask: matching rows with a masked column not in its masked state. A row that still
//     matches through a match column the mapping does not mask (match user_id, mask email) is
//     what masking means to leave, not a remainder; masking a match column makes the row stop
//     matching, which is also fine;
//   - retain: never remaining; matching rows count as Retained, with the retain reason.
//
// Deep verify also searches the text-like columns of delete and mask tables (not retain tables,
// not the match columns a mask table keeps on purpose) for rows whose text equals or contains
// an identifier value, compared byte for byte without wildcards (strpos, INSTR, instr). Values
// shorter than MinContainsRunes are only compared for equality. Those rows are reported as
// remaining under "table (deep: column)". Containment finds real copies (an address in a notes
// column) and, by nature, bystanders whose value contains the subject's ("xalice@..."): a deep
// finding is a lead for a human, not proof. Deep verify scans every mapped table in full.
//
// # Deep verification of the whole database
//
// With spec.verification.deepScope database, deep verify also searches every text-like column of
// every table and view outside the mapping that the credentials can read (unmapped.go): every
// schema of a PostgreSQL database (partitions through their parent, foreign tables never), the
// DSN's MySQL database and the databases the mapping names, SQLite's main database and the
// schemas the mapping names. It looks for every value of the subject, direct and derived, as
// given, as normalised by its identifier's kind, and emails in any letter case, with the same
// predicates as above, and reports rows found as unmapped by table and column
// ("public.audit_log.payload", "audit_log.payload"), never as remaining: the mapping cannot erase
// what it does not cover. It searches at most Options.UnmappedMaxRelations tables and views and
// Options.UnmappedMaxColumns columns (Check warns when the database has more), runs outside the
// verification's transaction, and skips (and logs) a relation it cannot read instead of failing
// the verification. Each relation costs a full scan per statement; a subject with more values
// than one statement takes is searched in several, and a row holding values of two of them is
// counted twice.
//
// # Transactions and batches
//
// Erase counts, in one transaction, what each table still needs. If the total is at most
// Options.MaxAtomicRows (10000) every change happens in that transaction, one statement per
// table: an outage or crash leaves the store untouched, and the count bounds what each statement
// touches (batches inside one transaction hold the same locks to the end and only multiply
// statements). Larger erasures commit every batch of Options.BatchSize (1000) rows on its own,
// so that a big subject does not hold locks for minutes; an interruption then leaves whole rows
// deleted or fully masked, and the next Erase finishes the rest. Those statements are limited to
// a batch (except in SQLite, which locks the whole file for any write anyway). Dry runs and
// verify use a read-only repeatable-read transaction.
//
// # Catalog
//
// Every operation needs the mapped tables' columns. They are read from the catalog and reused for
// Options.CatalogTTL (30s): a request reads them in three transactions (plan, erase, verify), and
// on a small erasure that read costs the database more than the erasure. Any failed operation
// forgets them, so a column renamed or dropped under the cache fails one operation and the next
// reports it as a mapping problem. A column added meanwhile is searched by deep verify once the
// TTL is up. Check always reads the catalog. Operations read it before they open their
// transaction, on the pool, several tables (and the foreign keys) at once: no statement then
// waits for a connection while its operation holds another.
//
// # Errors
//
// Every error is a *connector.Error: unreachable, timed out, restarting, deadlocked ->
// KindUnavailable; refused credentials or privileges -> KindAuth; missing tables or columns,
// unusable mask columns, constraint violations -> KindMapping; unparsable DSN, missing database
// -> KindInvalid. Driver messages are scrubbed of identifier values and not kept as causes.
package sqlstore
