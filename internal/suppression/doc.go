// Package suppression keeps the entries of a SuppressionList: hashes of identifiers of people who
// must stay erased (docs/suppression.md). It never holds an identifier in clear.
//
// Two hash schemes live side by side:
//   - Keyed (a list fed by DeletionRequests): HMAC-SHA-256 under the installation's suppression
//     key, of the identifier's kind and its value normalised by internal/normalize. Without the
//     key the hashes cannot be tested against a dictionary of email addresses.
//   - DROP (a list loaded from California's DROP platform): the unkeyed SHA-256 the platform
//     hands out, of the identifier normalised as DROP prescribes (email trimmed and lower-cased,
//     phone numbers as their last ten digits).
//
// Entries are kept in Secrets of the list's namespace, in chunks under 1 MiB tied together by an
// index Secret that names every one of them, claimed before they are written and committed last
// (store.go), so that a list of a million entries fits, survives restarts and reinstalls, is never
// silently truncated, and is kept without listing or watching Secrets.
package suppression
