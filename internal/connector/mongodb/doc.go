// Package mongodb is the connector of type mongodb: a MongoDB deployment, or a server of its wire
// protocol such as FerretDB, mapped with spec.collections. Its semantics are the SQL stores'
// (internal/connector/sqlstore) with documents for rows and dotted field paths for columns.
//
// # Values
//
// Collection and field names come only from the spec and are checked against the CRD's patterns
// (dotted identifiers: never an operator, never a positional path). Identifier values only ever
// travel as BSON values of a filter ($in, or a $regex built with regexp.QuoteMeta), never as
// query text or operators: {"$ne": 1}, "$where" and "a.b" are strings like any other. An exact
// match on a value also compares the integer it spells (MongoDB compares int32, int64 and double
// alike) and the ObjectID it spells, so that customer._id provides customerId to orders that
// hold the ObjectID or the number.
//
// # Matching
//
// A document matches a mapping when a match field holds, itself or as an element of an array on
// its path, a value equal to one of the subject's values of the field's identifier. Email and
// phone fields are narrowed on the server by a case-insensitive anchored $regex of the address's
// spellings (normalize.EmailCandidates) or a $regex of the number's digits with separators
// allowed between them, and every candidate is confirmed here with the normaliser, so a
// bystander whose value only resembles the subject's is never touched. Mappings of one collection
// rank retain > delete > mask; documents reached only through shared values are counted as
// shared and left alone; Derive follows provides like the SQL stores.
//
// # Mask state
//
// A masked field is masked when it is null or absent (every strategy), the marker (redact), or
// 64 lower-case hex digits (hash). Masking rewrites, in Go, the top-level fields holding the
// masked paths of a document that still has an unmasked one, and sets them with one $set by
// _id; array elements are masked one by one, nullify sets the whole field to null.
//
// # Order instead of transactions
//
// An erasure changes one document at a time: each delete batch ($in of _ids, re-checking the
// match filter) and each masked document is atomic on its own, and there is no transaction
// around the whole, since FerretDB and standalone MongoDB servers have none. The mappings run
// in an order that keeps an interrupted erasure recoverable: a mapping that provides an
// identifier runs after every mapping that matches on it (orders before the customer whose _id
// leads to them), otherwise spec order. The next Erase derives again from what is left and
// finishes the rest; Verify shows what remains meanwhile.
//
// # Errors
//
// Every error is a *connector.Error: unreachable, timed out, stepping down -> KindUnavailable;
// refused credentials or privileges -> KindAuth; a missing collection or a command the server
// refuses -> KindMapping; an unparsable URI -> KindInvalid (without the driver's text, which
// would quote the URI's password). The server's code goes into Code ("MongoDB 13"); its text,
// scrubbed of the subject's values, only into the debug log.
package mongodb
