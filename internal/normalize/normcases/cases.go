// Package normcases holds the spellings every connector's conformance tests store and look
// for: variants of one subject that must match, and near misses that never may. The SQL suite
// (sqlstore/sqltest) and the Redis tests share them, so every engine proves the same cases.
package normcases

// The subject, as its identifiers Secret holds it.
const (
	Email    = "customer-1@example.com"
	IDNEmail = "anna@bücher.example" // the domain in Unicode; stored also as punycode
	Phone    = "+15550100001"
	// Region resolves the national formats of Phone.
	Region = "US"
)

// EmailVariants are stored spellings of Email: letter case, and spaces around the address.
var EmailVariants = []string{
	"Customer-1@Example.com",
	"CUSTOMER-1@EXAMPLE.COM",
	" customer-1@EXAMPLE.com ",
	"customer-1@example.com   ",
	"   Customer-1@example.com",
}

// IDNVariants are stored spellings of IDNEmail: the domain in punycode or Unicode, any case.
var IDNVariants = []string{
	"anna@xn--bcher-kva.example",
	"Anna@Bücher.example",
	"ANNA@XN--BCHER-KVA.EXAMPLE",
}

// PhoneFormats are eight spellings of Phone: with and without country code, with a 00 prefix,
// and with spaces, dashes, dots and brackets. The national ones need Region.
var PhoneFormats = []string{
	"+15550100001",
	"+1 (555) 010-0001",
	"+1-555-010-0001",
	"+1.555.010.0001",
	"0015550100001",
	"00 1 555 010 0001",
	"(555) 010-0001",
	"555 010 0001",
}

// EmailBystanders resemble the subject's addresses and are someone else's.
var EmailBystanders = []string{
	"customer-11@example.com",
	"customer-1@example.co",
	"customer-10@example.com",
	"customer-1@example.com.evil",
	"xcustomer-1@example.com",
	"anna@bucher.example",
}

// PhoneBystanders resemble the subject's number and are another line: one digit differs,
// the national digits are the same in another country, or an extension (documented: a number
// with an extension is not the bare number, in either direction).
var PhoneBystanders = []string{
	"+15550100002",
	"+1 555 010 0010",
	"+44 5550100001",
	"+49 555 0100001",
	"+1 555 010 0001 ext. 7",
}
