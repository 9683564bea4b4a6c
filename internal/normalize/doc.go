// Package normalize says how the values of one kind of identifier compare: an email address in
// any letter case or with surrounding spaces, a phone number in any formatting, or an opaque id
// compared byte for byte. Every connector and the suppression sweeps compare through it, so that a
// variant spelling of the subject can never pass as someone else.
//
// Two values match exactly when their Keys are equal. A Key is the value's normalised form when the
// value can be normalised under its kind, and the value itself otherwise, so an unparsable value
// still matches its own spelling. Key is idempotent.
package normalize
